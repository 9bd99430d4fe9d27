# Bad statements, one per line. Each must answer 400 with a JSON error and
# write nothing. Lines starting with # are comments.
SELEC id FROM users
SELECT id FROM usres
SELECT id FROM users WHERE
SELECT id, FROM users
SELECT id FROM users WHERE spend_7 > 1
SELECT id FROM users WHERE n > 'abc'
SELECT id FROM users WHERE region + 1 > 0
SELECT id FROM users WHERE NOT n
SELECT id FROM users LIMIT -1
SELECT id FROM users LIMIT 99999999999999999999999
SELECT id FROM users ORDER BY nothing
SELECT region, n FROM users GROUP BY region
SELECT count(id, id) FROM users
SELECT sum(n, 5) FROM users
SELECT count() FROM users
SELECT avg(region) FROM users
SELECT 9223372036854775807 + n AS x FROM users
SELECT 99999999999999999999 FROM users
SELECT 1e999 FROM users
SELECT id FROM users AS OF 'yesterday'
SELECT id FROM users AS OF '99999-01-01T00:00:00Z'
SELECT window_sum(nothing, '7d') FROM users
SELECT window_sum(hits, 'forever') FROM users
SELECT window_sum(hits) FROM users
SELECT zscore(hits, '1d') FROM users
SELECT cosine(taste, [1, 2, 3]) FROM users
SELECT cosine(taste, 'nobody') AS s FROM users ORDER BY s DESC LIMIT 3
SELECT cosine(region, [1, 2]) FROM users
SELECT nearest_cluster(nothing) FROM users
SELECT id FROM users WHERE IN SEGMENT nothing
SELECT 'unterminated FROM users
SELECT "" FROM users
SELECT id FROM users WHERE id = 'a' GARBAGE
SELECT id FROM users; SELECT nope FROM users
SELECT id FROM users WHERE ((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((n > 0))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))
SELECT id FROM users WHERE n @ 3
SELECT id FROM users WHERE n = 1 | 2
CREATE FEATURE n ON hit AS COUNT()
CREATE FEATURE bad ON hit AS NOPE(x)
CREATE FEATURE bad ON hit AS DECAYED_SUM(x)
CREATE FEATURE bad ON hit AS DECAYED_SUM(x) HALF_LIFE '0s'
CREATE FEATURE bad ON hit AS DECAYED_SUM(x) HALF_LIFE 'soon'
CREATE FEATURE bad ON hit AS BETA(x) HALF_LIFE '1d' PRIOR (-1, 2)
CREATE WINDOW bad ON hit BUCKET '0s' RETAIN '1d'
CREATE WINDOW bad ON hit BUCKET '1d' RETAIN '1h'
CREATE VECTOR bad ON hit AS EWMA(v) DIM 0 HALF_LIFE '1d'
CREATE VECTOR bad ON hit AS EWMA(v) DIM 100000000 HALF_LIFE '1d'
CREATE VECTOR bad ON hit AS SGD(v, y) DIM 2 LEARNING_RATE -1
CREATE ATTRIBUTE bad WHATEVER
CREATE SEGMENT bad AS n + 1
CREATE SEGMENT bad AS IN SEGMENT bad
CREATE SEGMENT bad AS nothing > 1
DROP FEATURE nothing
DROP SEGMENTS nothing
DESCRIBE nothing
SHOW NOTHINGS
INSERT INTO nothing (user, ts) VALUES ('u1', 1)
INSERT INTO hit (user) VALUES ('u1')
INSERT INTO hit (user, ts, x) VALUES ('u1', 1)
INSERT INTO hit (user, ts, x) VALUES ('u1', 1, 'lots')
INSERT INTO hit (user, ts, x) VALUES ('u1', 'yesterday', 1.0)
INSERT INTO hit (user, ts, x) VALUES ('u1', 999999999999999999, 1.0)
INSERT INTO hit (user, ts, x) VALUES ('', 1, 1.0)
INSERT INTO hit (user, ts, x) VALUES ('a	b', 1, 1.0)
INSERT INTO hit (user, ts, x) VALUES ('ok', 1, 1.0), ('', 2, 1.0)
INSERT INTO hit (user, ts, x) VALUES ('ok', 1, 1e200)
INSERT INTO view (user, ts, v) VALUES ('ok', 1, [1, 2, 3])
INSERT INTO view (user, ts, v) VALUES ('ok', 1, [1e39, 0])
INSERT INTO view (user, ts, v) VALUES ('ok', 1, 'not a vector')
UPDATE users SET nothing = 1 WHERE id = 'u1'
UPDATE users SET region = 5 WHERE id = 'u1'
UPDATE users SET n = 5 WHERE id = 'u1'
DELETE USER ''
DELETE FROM users WHERE nothing = 1
CLUSTER users BY taste INTO 0
CLUSTER users BY taste INTO 1000000
CLUSTER users BY nothing INTO 2
CLUSTER users BY region INTO 2
CREATE SEGMENTS g FROM CLUSTER users BY taste INTO 1000000
EXPLAIN EXPLAIN EXPLAIN SELECT nope FROM users
VACUUM users

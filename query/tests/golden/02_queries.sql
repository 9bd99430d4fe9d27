# A small history, evaluated at the fixed clock 2026-11-15T00:00:00Z unless AS OF says otherwise.
# Without the event history, AS OF evaluates the stored state at a time
# (07_as_of_history.sql reads it exactly).
ALTER DATABASE SET HISTORY '0s';
----
ALTER DATABASE

CREATE ATTRIBUTE age INT;
----
CREATE ATTRIBUTE

CREATE ATTRIBUTE region STRING ON signup;
----
CREATE ATTRIBUTE

CREATE FEATURE purchases ON purchase AS COUNT();
----
CREATE FEATURE

CREATE FEATURE revenue ON purchase AS SUM(amount);
----
CREATE FEATURE

CREATE FEATURE smallest ON purchase AS MIN(amount);
----
CREATE FEATURE

CREATE FEATURE latest ON purchase AS LAST(amount);
----
CREATE FEATURE

CREATE FEATURE spend_7d ON purchase AS DECAYED_SUM(amount) HALF_LIFE '7d';
----
CREATE FEATURE

CREATE FEATURE basket ON purchase AS DECAYED_AVG(amount) HALF_LIFE '30d';
----
CREATE FEATURE

CREATE FEATURE visits ON view AS DECAYED_COUNT() HALF_LIFE '1d';
----
CREATE FEATURE

CREATE FEATURE ctr ON impression AS BETA(clicked) HALF_LIFE '14d' PRIOR (1, 20);
----
CREATE FEATURE

CREATE WINDOW views ON view BUCKET '1h' RETAIN '30d';
----
CREATE WINDOW

CREATE WINDOW spend ON purchase OF amount BUCKET '1d' RETAIN '365d';
----
CREATE WINDOW

CREATE VECTOR taste ON browse AS EWMA(item_vec) DIM 4 HALF_LIFE '14d';
----
CREATE VECTOR

CREATE SEGMENT big_spenders AS spend_7d > 100 AND purchases >= 2;
----
CREATE SEGMENT

INSERT INTO purchase (user, ts, amount) VALUES ('u1', '2026-11-01T00:00:00Z', 100.0), ('u1', '2026-11-08T00:00:00Z', 60.0), ('u2', 1794009600000, 30);
----
INSERT 3

# A late event: u3's second purchase arrives before its first.
INSERT INTO purchase (user, ts, amount) VALUES ('u3', '2026-11-14T00:00:00Z', 20.0);
----
INSERT 1

INSERT INTO purchase (user, ts, amount) VALUES ('u3', '2026-11-10T00:00:00Z', 500.0);
----
INSERT 1

INSERT INTO signup (user, ts, region) VALUES ('u2', '2026-10-01T00:00:00Z', 'south'), ('u3', '2026-10-02T00:00:00Z', 'north');
----
INSERT 2

UPDATE users SET age = 31, region = 'north' WHERE id = 'u1';
----
UPDATE 1

UPDATE users SET age = 45 WHERE id IN ('u2', 'u3');
----
UPDATE 2

INSERT INTO view (user, ts) VALUES ('u4', '2026-11-14T06:00:00Z'), ('u4', '2026-11-14T06:01:00Z'), ('u4', '2026-11-14T06:02:00Z'), ('u4', '2026-11-14T06:03:00Z'), ('u4', '2026-11-14T06:04:00Z'), ('u4', '2026-11-14T06:05:00Z'), ('u4', '2026-11-14T06:06:00Z'), ('u4', '2026-11-14T06:07:00Z'), ('u4', '2026-11-14T06:08:00Z'), ('u4', '2026-11-14T06:09:00Z'), ('u4', '2026-11-13T06:00:00Z'), ('u4', '2026-11-12T06:00:00Z'), ('u4', '2026-11-12T06:01:00Z'), ('u4', '2026-11-11T06:00:00Z'), ('u4', '2026-11-10T06:00:00Z'), ('u4', '2026-11-10T06:01:00Z'), ('u4', '2026-11-09T06:00:00Z'), ('u4', '2026-11-08T06:00:00Z'), ('u4', '2026-11-08T06:01:00Z'), ('u4', '2026-11-07T06:00:00Z'), ('u1', '2026-11-14T22:00:00Z'), ('u1', '2026-11-14T19:00:00Z'), ('u1', '2026-11-14T04:00:00Z');
----
INSERT 23

INSERT INTO impression (user, ts, clicked) VALUES ('u1', '2026-11-14T00:00:00Z', 1), ('u1', '2026-11-14T00:00:00Z', 0), ('u2', '2026-11-14T00:00:00Z', true);
----
INSERT 3

INSERT INTO browse (user, ts, item_vec) VALUES ('u1', '2026-11-14T00:00:00Z', [1, 0, 0, 0]), ('u1', '2026-11-14T00:00:00Z', [0, 1, 0, 0]);
----
INSERT 2

SELECT * FROM users WHERE id = 'u1' AS OF '2026-11-10T00:00:00Z';
----
id:string | age:int | region:string | purchases:int | revenue:float | smallest:float | latest:float | spend_7d:float | basket:float | visits:float | ctr:float | taste:vector
'u1' | 31 | 'north' | 2 | 160.0 | 60.0 | 60.0 | 90.23688916084018 | 78.38617291969 | 2.5116076007060317 | 0.08695652173913043 | [0.5, 0.5, 0.0, 0.0]

SELECT * FROM users WHERE id = 'nobody';
----
id:string | age:int | region:string | purchases:int | revenue:float | smallest:float | latest:float | spend_7d:float | basket:float | visits:float | ctr:float | taste:vector
(no rows)

SELECT id, spend_7d, window_sum(spend, '7d'), window_count(views, '24h') FROM users
  WHERE region = 'north' AND spend_7d > 50 AND age BETWEEN 20 AND 40
  ORDER BY spend_7d DESC LIMIT 10 AS OF '2026-11-10T00:00:00Z';
----
id:string | spend_7d:float | window_sum(spend, '7d'):float | window_count(views, '24h'):int
'u1' | 90.23688916084018 | 60.0 | 0

SELECT id, purchases, revenue, smallest, latest, basket, ctr, visits FROM users ORDER BY id;
----
id:string | purchases:int | revenue:float | smallest:float | latest:float | basket:float | ctr:float | visits:float
'u1' | 2 | 160.0 | 60.0 | 60.0 | 78.38617291969 | 0.08521424675269688 | 2.370641897842523
'u2' | 1 | 30.0 | 30.0 | 30.0 | 30.0 | 0.08890863049102382 | 0.0
'u3' | 2 | 520.0 | 20.0 | 20.0 | 248.9175322920397 | 0.047619047619047616 | 0.0
'u4' | 0 | 0.0 | NULL | NULL | NULL | 0.047619047619047616 | 6.7440912936948205

SELECT id, spend_7d FROM users ORDER BY spend_7d DESC;
----
id:string | spend_7d:float
'u3' | 322.867886836397
'u1' | 55.0
'u2' | 13.585854963958601
'u4' | 0.0

SELECT id, spend_7d AS s FROM users WHERE s > 1;
----
error: unknown column 's' (line 1, column 43)
  SELECT id, spend_7d AS s FROM users WHERE s > 1;
                                            ^

SELECT count(*) FROM users WHERE IN SEGMENT big_spenders;
----
count(*):int
1

SELECT id FROM users WHERE IN SEGMENT big_spenders AS OF '2026-11-08T00:00:00Z';
----
id:string
'u1'
'u3'

SELECT id FROM users WHERE NOT IN SEGMENT big_spenders ORDER BY id;
----
id:string
'u1'
'u2'
'u4'

SELECT region, count(*), avg(spend_7d), sum(revenue) FROM users GROUP BY region ORDER BY region;
----
region:string | count(*):int | avg(spend_7d):float | sum(revenue):float
'north' | 2 | 188.9339434181985 | 680.0
'south' | 1 | 13.585854963958601 | 30.0
NULL | 1 | 0.0 | 0.0

SELECT id, zscore(views, '1d', '7d') AS z FROM users WHERE zscore(views, '1d', '7d') > 3;
----
id:string | z:float
'u4' | 16.035674514745466

SELECT id, zscore(views, '1d', '7d') AS z, window_count(views, '1d'), window_avg(spend, '30d'), window_stddev(spend, '30d'), window_min(views, '1h') FROM users ORDER BY id;
----
id:string | z:float | window_count(views, '1d'):int | window_avg(spend, '30d'):float | window_stddev(spend, '30d'):float | window_min(views, '1h'):float
'u1' | NULL | 3 | 80.0 | 28.284271247461902 | NULL
'u2' | NULL | 0 | 30.0 | NULL | NULL
'u3' | NULL | 0 | 260.0 | 339.4112549695428 | NULL
'u4' | 16.035674514745466 | 10 | NULL | NULL | NULL

# Three-valued logic: u4 has no age, so neither branch holds for it.
SELECT id FROM users WHERE age > 40 OR NOT age > 40 ORDER BY id;
----
id:string
'u1'
'u2'
'u3'

SELECT id FROM users WHERE age IS NULL OR region NOT IN ('north') ORDER BY id DESC LIMIT 2;
----
id:string
'u4'
'u2'

SELECT id, revenue / purchases AS avg_order, -revenue, revenue % 7, purchases * 2 + 1 FROM users WHERE purchases > 0 ORDER BY avg_order;
----
id:string | avg_order:float | -revenue:float | revenue % 7:float | purchases * 2 + 1:int
'u2' | 30.0 | -30.0 | 2.0 | 3
'u1' | 80.0 | -160.0 | 6.0 | 5
'u3' | 260.0 | -520.0 | 2.0 | 5

SELECT count(*), count(age), min(region), max(age), sum(purchases), avg(age) FROM users;
----
count(*):int | count(age):int | min(region):string | max(age):int | sum(purchases):int | avg(age):float
4 | 3 | 'north' | 45 | 5 | 40.333333333333336

SELECT count(*), sum(revenue) FROM users WHERE id = 'nobody';
----
count(*):int | sum(revenue):float
0 | NULL

SELECT region, count(*) AS n FROM users GROUP BY region ORDER BY n DESC, region LIMIT 1;
----
region:string | n:int
'north' | 2

SELECT id, taste FROM users WHERE taste IS NOT NULL;
----
id:string | taste:vector
'u1' | [0.5, 0.5, 0.0, 0.0]

EXPLAIN SELECT id FROM users WHERE spend_7d > 50;
----
plan:string
'Projection: id'
'  Filter: spend_7d > 50'
'    ParallelScan: users, 2 partitions as of 2026-11-15T00:00:00Z'
'      Fetch: features'

EXPLAIN SELECT * FROM users WHERE id = 'u1';
----
plan:string
'Projection: id, age, region, purchases, revenue, smallest, latest, spend_7d, basket, visits, ctr, taste'
'  Filter: id = 'u1''
'    PointLookup: users id = 'u1' as of 2026-11-15T00:00:00Z'
'      Fetch: features, attributes'

EXPLAIN SELECT region, count(*) FROM users WHERE age > 3 GROUP BY region ORDER BY region;
----
plan:string
'Projection: region, count(*)'
'  Sort: region'
'    Aggregate: group by region; count(*)'
'      Filter: age > 3'
'        ParallelScan: users, 2 partitions as of 2026-11-15T00:00:00Z'
'          Fetch: features, attributes'

EXPLAIN SELECT id, window_sum(spend, '7d') FROM users ORDER BY spend_7d DESC LIMIT 3;
----
plan:string
'Projection: id, window_sum(spend, '7d')'
'  TopK: 3 by spend_7d DESC'
'    ParallelScan: users, 2 partitions as of 2026-11-15T00:00:00Z'
'      Fetch: features, 1 window range(s)'

DELETE USER 'u2';
----
DELETE 1

DELETE USER 'u2';
----
DELETE 0

DELETE FROM users WHERE IN SEGMENT big_spenders;
----
DELETE 1

SELECT id FROM users ORDER BY id;
----
id:string
'u1'
'u4'

SELECT purchases > 0 AS buyer, count(*) FROM users GROUP BY buyer ORDER BY buyer;
----
buyer:bool | count(*):int
false | 1
true | 1

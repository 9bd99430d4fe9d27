# With the event history kept, AS OF reads what the writes up to then give.
# The clock reads 2026-11-15T00:00:00Z.
ALTER DATABASE SET HISTORY '30d';
----
ALTER DATABASE

CREATE FEATURE purchases ON purchase AS COUNT();
----
CREATE FEATURE

CREATE FEATURE spend ON purchase AS DECAYED_SUM(amount) HALF_LIFE '7d';
----
CREATE FEATURE

CREATE WINDOW views ON view BUCKET '1h' RETAIN '30d';
----
CREATE WINDOW

CREATE ATTRIBUTE tier STRING;
----
CREATE ATTRIBUTE

CREATE VECTOR taste ON like AS EWMA(v) DIM 2 HALF_LIFE '7d';
----
CREATE VECTOR

CREATE SEGMENT buyers AS purchases >= 1;
----
CREATE SEGMENT

# Late and out of order: the purchase of 5 November arrives first.
INSERT INTO purchase (user, ts, amount) VALUES ('u1', '2026-11-05T00:00:00Z', 100.0), ('u1', '2026-10-25T00:00:00Z', 10.0), ('u2', '2026-11-03T00:00:00Z', 1.0), ('u1', '2026-10-31T12:00:00Z', 20.0), ('u1', '2026-11-10T00:00:00Z', 50.0);
----
INSERT 5

INSERT INTO view (user, ts) VALUES ('u1', '2026-11-01T05:00:00Z'), ('u1', '2026-10-31T20:00:00Z'), ('u1', '2026-11-01T00:00:00Z'), ('u1', '2026-10-31T23:30:00Z');
----
INSERT 4

UPDATE users SET tier = 'gold' WHERE id = 'u1';
----
UPDATE 1

# Two purchases by then: spend = 10·2^(−7/7) + 20·2^(−0.5/7) = 5 + 19.0339…;
# the day's views are the three up to 00:00 (the one at 00:00 counts).
SELECT id, spend, purchases, window_count(views, '1d') FROM users WHERE id = 'u1' AS OF '2026-11-01T00:00:00Z';
----
id:string | spend:float | purchases:int | window_count(views, '1d'):int
'u1' | 24.03390306021239 | 2 | 3

# Today, every write counts.
SELECT id, purchases, tier FROM users WHERE id = 'u1';
----
id:string | purchases:int | tier:string
'u1' | 4 | 'gold'

# u2's first write is on 3 November: it does not exist before.
SELECT count(*) FROM users AS OF '2026-11-01T00:00:00Z';
----
count(*):int
1

SELECT id, purchases FROM users ORDER BY id AS OF '2026-11-04T00:00:00Z';
----
id:string | purchases:int
'u1' | 2
'u2' | 1

# The attribute was set now (the clock's time), after every event.
SELECT id, tier FROM users WHERE id = 'u1' AS OF '2026-11-14T00:00:00Z';
----
id:string | tier:string
'u1' | NULL

EXPLAIN SELECT id, spend FROM users AS OF '2026-11-01T00:00:00Z';
----
plan:string
'Projection: id, spend'
'  ParallelScan: users, 2 partitions as of 2026-11-01T00:00:00Z'
'    Fetch: features; users written since replayed from the event history'

# Vectors too: u1 liked [1, 0] then, and [0, 1] many times since; u2 [0, 1].
INSERT INTO like (user, ts, v) VALUES ('u1', '2026-10-30T00:00:00Z', [1, 0]), ('u2', '2026-10-30T00:00:00Z', [0, 1]), ('u3', '2026-10-30T00:00:00Z', [1, 0.1]), ('u1', '2026-11-02T00:00:00Z', [0, 1]), ('u1', '2026-11-03T00:00:00Z', [0, 1]), ('u1', '2026-11-04T00:00:00Z', [0, 1]), ('u4', '2026-10-30T00:00:00Z', [0.5, 1]), ('u4', '2026-11-05T00:00:00Z', [1, 0]), ('u4', '2026-11-06T00:00:00Z', [1, 0]);
----
INSERT 9

# Ranked on the vectors of then (u3 is like u1 was; u4 has turned like it
# since), not on today's index.
SELECT id, cosine(taste, 'u1') AS s FROM users WHERE id != 'u1' ORDER BY s DESC LIMIT 2 AS OF '2026-11-01T00:00:00Z';
----
id:string | s:float
'u3' | 0.995037194907719
'u4' | 0.4472135954999579

SELECT id, cosine(taste, 'u1') AS s FROM users WHERE id != 'u1' ORDER BY s DESC LIMIT 2;
----
id:string | s:float
'u2' | 0.9759045675040471
'u4' | 0.43305410454475096

# The buyers then were u1 alone: their centroid is u1's vector of then.
SELECT id, cosine(taste, centroid(taste, buyers)) AS s FROM users WHERE id = 'u3' AS OF '2026-11-01T00:00:00Z';
----
id:string | s:float
'u3' | 0.995037194907719

EXPLAIN SELECT id, cosine(taste, 'u1') AS s FROM users ORDER BY s DESC LIMIT 2 AS OF '2026-11-01T00:00:00Z';
----
plan:string
'Projection: id, s'
'  TopK: 2 by s DESC'
'    ParallelScan: users, 2 partitions as of 2026-11-01T00:00:00Z'
'      Fetch: features; users written since replayed from the event history'

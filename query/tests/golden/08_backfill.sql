# Without the event history, an item cannot be re-derived: replacing one is
# refused, and a segment's predicate is simply swapped.
ALTER DATABASE SET HISTORY '0s';
----
ALTER DATABASE

CREATE FEATURE early ON purchase AS COUNT();
----
CREATE FEATURE

CREATE OR REPLACE FEATURE early ON purchase AS SUM(amount);
----
error: replacing feature 'early' re-derives it from the event history, which this database does not keep; DROP it and CREATE it again to start it empty (line 1, column 27)
  CREATE OR REPLACE FEATURE early ON purchase AS SUM(amount);
                            ^^^^^

CREATE SEGMENT big AS early > 10;
----
CREATE SEGMENT

CREATE OR REPLACE SEGMENT big AS early > 1;
----
CREATE OR REPLACE SEGMENT

DESCRIBE big;
----
kind:string | name:string | definition:string
'segment' | 'big' | 'CREATE SEGMENT big AS early > 1'

DROP SEGMENT big;
----
DROP SEGMENT

DROP FEATURE early;
----
DROP FEATURE

# With the history kept, items made after the writes are computed over them.
# The clock reads 2026-11-15T00:00:00Z.
ALTER DATABASE SET HISTORY '30d';
----
ALTER DATABASE

# References kept up from the first write.
CREATE FEATURE spend14 ON purchase AS DECAYED_SUM(amount) HALF_LIFE '14d';
----
CREATE FEATURE

CREATE FEATURE count_ref ON purchase AS COUNT();
----
CREATE FEATURE

CREATE WINDOW views_ref ON view BUCKET '1h' RETAIN '30d';
----
CREATE WINDOW

CREATE VECTOR taste_ref ON like AS EWMA(v) DIM 2 HALF_LIFE '7d';
----
CREATE VECTOR

INSERT INTO purchase (user, ts, amount, note) VALUES ('u1', '2026-11-05T00:00:00Z', 100.0, 'a'), ('u1', '2026-10-25T00:00:00Z', 10.0, 'b'), ('u2', '2026-11-03T00:00:00Z', 1.0, 'c'), ('u1', '2026-10-31T12:00:00Z', 20.0, 'd');
----
INSERT 4

INSERT INTO view (user, ts) VALUES ('u1', '2026-11-14T05:00:00Z'), ('u1', '2026-11-14T20:00:00Z'), ('u2', '2026-11-14T23:30:00Z');
----
INSERT 3

INSERT INTO like (user, ts, v) VALUES ('u1', '2026-11-10T00:00:00Z', [1.0, 0.0]), ('u1', '2026-11-12T00:00:00Z', [0.0, 1.0]);
----
INSERT 2

# Made now, they read as the references do.
CREATE FEATURE purchases ON purchase AS COUNT();
----
CREATE FEATURE

CREATE FEATURE spend ON purchase AS DECAYED_SUM(amount) HALF_LIFE '7d';
----
CREATE FEATURE

CREATE WINDOW views ON view BUCKET '1h' RETAIN '30d';
----
CREATE WINDOW

CREATE VECTOR taste ON like AS EWMA(v) DIM 2 HALF_LIFE '7d';
----
CREATE VECTOR

SELECT id, purchases, count_ref, window_count(views, '1d'), window_count(views_ref, '1d'), taste, taste_ref FROM users ORDER BY id;
----
id:string | purchases:int | count_ref:int | window_count(views, '1d'):int | window_count(views_ref, '1d'):int | taste:vector | taste_ref:vector
'u1' | 3 | 3 | 2 | 2 | [0.45065066, 0.5493493] | [0.45065066, 0.5493493]
'u2' | 1 | 1 | 1 | 1 | NULL | NULL

# Its DESCRIBE says from when: the first write the history holds.
DESCRIBE spend;
----
kind:string | name:string | definition:string
'feature' | 'spend' | 'CREATE FEATURE spend ON purchase AS DECAYED_SUM(amount) HALF_LIFE '1w' -- backfilled from 2026-10-25T00:00:00Z'

# A new half-life re-derives the feature: it reads as the one kept at 14 days.
ALTER FEATURE spend SET HALF_LIFE '14d';
----
ALTER FEATURE

SELECT id, spend, spend14 FROM users ORDER BY id;
----
id:string | spend:float | spend14:float
'u1' | 74.24170303668224 | 74.24170303668224
'u2' | 0.5520447568369062 | 0.5520447568369062

CREATE OR REPLACE FEATURE spend ON purchase AS DECAYED_SUM(amount) HALF_LIFE '7d';
----
CREATE OR REPLACE FEATURE

# 100·2^(−10/7) + 10·2^(−21/7) + 20·2^(−14.5/7) for u1.
SELECT id, spend FROM users ORDER BY id;
----
id:string | spend:float
'u1' | 43.158332993476805
'u2' | 0.3047534135511189

ALTER VECTOR taste SET HALF_LIFE '1d';
----
ALTER VECTOR

DESCRIBE taste;
----
kind:string | name:string | definition:string
'vector' | 'taste' | 'CREATE VECTOR taste ON like AS EWMA(v) DIM 2 HALF_LIFE '1d' -- backfilled from 2026-10-25T00:00:00Z'

# Writes after a re-derivation feed the new definition.
INSERT INTO purchase (user, ts, amount) VALUES ('u2', '2026-11-14T00:00:00Z', 5.0);
----
INSERT 1

SELECT id, purchases, count_ref FROM users ORDER BY id;
----
id:string | purchases:int | count_ref:int
'u1' | 3 | 3
'u2' | 2 | 2

# A filtered feature is computed over the history through its filter.
CREATE FEATURE big_buys ON purchase WHERE amount >= 20 AS COUNT();
----
CREATE FEATURE

SELECT id, big_buys FROM users ORDER BY id;
----
id:string | big_buys:int
'u1' | 2
'u2' | 0

CREATE FEATURE big_spend ON purchase WHERE amount >= 20 AS DECAYED_SUM(amount) HALF_LIFE '7d';
----
CREATE FEATURE

ALTER FEATURE big_spend SET HALF_LIFE '14d';
----
ALTER FEATURE

DESCRIBE big_spend;
----
kind:string | name:string | definition:string
'feature' | 'big_spend' | 'CREATE FEATURE big_spend ON purchase WHERE amount >= 20 AS DECAYED_SUM(amount) HALF_LIFE '2w' -- backfilled from 2026-10-25T00:00:00Z'

# A computed argument survives a new half-life: twice spend14.
CREATE FEATURE double_spend ON purchase AS DECAYED_SUM(amount * 2) HALF_LIFE '7d';
----
CREATE FEATURE

ALTER FEATURE double_spend SET HALF_LIFE '14d';
----
ALTER FEATURE

SELECT id, double_spend, spend14 * 2 FROM users ORDER BY id;
----
id:string | double_spend:float | spend14 * 2:float
'u1' | 148.48340607336448 | 148.48340607336448
'u2' | 10.621041043780009 | 10.621041043780009

DESCRIBE double_spend;
----
kind:string | name:string | definition:string
'feature' | 'double_spend' | 'CREATE FEATURE double_spend ON purchase AS DECAYED_SUM(amount * 2.0) HALF_LIFE '2w' -- backfilled from 2026-10-25T00:00:00Z'

# What cannot be done says why, and changes nothing.
ALTER FEATURE purchases SET HALF_LIFE '7d';
----
error: feature 'purchases' is a COUNT(), which has no half-life (line 1, column 15)
  ALTER FEATURE purchases SET HALF_LIFE '7d';
                ^^^^^^^^^

ALTER FEATURE nosuch SET HALF_LIFE '7d';
----
error: unknown feature 'nosuch' (line 1, column 15)
  ALTER FEATURE nosuch SET HALF_LIFE '7d';
                ^^^^^^

ALTER VECTOR spend SET HALF_LIFE '7d';
----
error: unknown vector 'spend' (line 1, column 14)
  ALTER VECTOR spend SET HALF_LIFE '7d';
               ^^^^^

CREATE OR REPLACE FEATURE views ON view AS COUNT();
----
error: 'views' is a window: CREATE OR REPLACE FEATURE replaces only a feature (line 1, column 27)
  CREATE OR REPLACE FEATURE views ON view AS COUNT();
                            ^^^^^

CREATE FEATURE bad ON purchase AS SUM(note);
----
error: the event history does not fit the new definition: the write of user 'u1' at 2026-10-25T00:00:00Z: field 'note': expected a number, got string (feature 'bad') (line 1, column 16)
  CREATE FEATURE bad ON purchase AS SUM(note);
                 ^^^

SHOW FEATURES;
----
name:string | definition:string
'spend14' | 'CREATE FEATURE spend14 ON purchase AS DECAYED_SUM(amount) HALF_LIFE '2w''
'count_ref' | 'CREATE FEATURE count_ref ON purchase AS COUNT()'
'purchases' | 'CREATE FEATURE purchases ON purchase AS COUNT()'
'spend' | 'CREATE FEATURE spend ON purchase AS DECAYED_SUM(amount) HALF_LIFE '1w''
'big_buys' | 'CREATE FEATURE big_buys ON purchase WHERE amount >= 20 AS COUNT()'
'big_spend' | 'CREATE FEATURE big_spend ON purchase WHERE amount >= 20 AS DECAYED_SUM(amount) HALF_LIFE '2w''
'double_spend' | 'CREATE FEATURE double_spend ON purchase AS DECAYED_SUM(amount * 2.0) HALF_LIFE '2w''

# An IVF index on a vector, on data small enough to follow by hand: three
# tight clusters of four users each, around (10, 0), (0, 10) and (-10, -10).
# With three lists, each cluster is one list.
CREATE ATTRIBUTE region STRING ON view;
----
CREATE ATTRIBUTE

CREATE VECTOR taste ON view AS EWMA(v) DIM 2 HALF_LIFE '14d';
----
CREATE VECTOR

INSERT INTO view (user, ts, v, region) VALUES ('a1', 1, [10, 0], 'north'), ('a2', 1, [10, 1], 'south'), ('a3', 1, [9, 0], 'north'), ('a4', 1, [11, -1], 'south'), ('b1', 1, [0, 10], 'north'), ('b2', 1, [1, 10], 'south'), ('b3', 1, [0, 9], 'north'), ('b4', 1, [-1, 11], 'south'), ('c1', 1, [-10, -10], 'north'), ('c2', 1, [-9, -10], 'south'), ('c3', 1, [-10, -9], 'north'), ('c4', 1, [-11, -11], 'south');
----
INSERT 12

CREATE INDEX taste_ivf ON users USING ivf (taste) WITH (lists = 3, probes = 1);
----
CREATE INDEX

SHOW INDEXES;
----
name:string | vector:string | method:string | lists:int | probes:int | rerank:int | rows:int | recall_at_10:float
'taste_ivf' | 'taste' | 'ivf' | 3 | 1 | 4 | 12 | NULL

CREATE INDEX IF NOT EXISTS taste_ivf ON users USING ivf (taste);
----
CREATE INDEX skipped: index 'taste_ivf' exists

# One probe reads a1's own list, the cluster around (10, 0), ranked exactly.
SELECT id, cosine(taste, 'a1') AS s FROM users ORDER BY s DESC LIMIT 3;
----
id:string | s:float
'a1' | 1.0
'a3' | 1.0
'a4' | 0.9958932064677039

# With fewer users in the probed lists than asked for, the search goes on to
# the next lists, nearest first.
SELECT id, cosine(taste, 'a1') AS s FROM users ORDER BY s DESC LIMIT 6;
----
id:string | s:float
'a1' | 1.0
'a3' | 1.0
'a4' | 0.9958932064677039
'a2' | 0.9950371902099892
'b2' | 0.09950371902099892
'b1' | 0.0

# Probing every list, or the exact scan, gives the same.
SELECT id, cosine(taste, 'a1') AS s FROM users ORDER BY s DESC LIMIT 6 WITH (probes = 3);
----
id:string | s:float
'a1' | 1.0
'a3' | 1.0
'a4' | 0.9958932064677039
'a2' | 0.9950371902099892
'b2' | 0.09950371902099892
'b1' | 0.0

SELECT id, cosine(taste, 'a1') AS s FROM users ORDER BY s DESC LIMIT 6 WITH (exact = true);
----
id:string | s:float
'a1' | 1.0
'a3' | 1.0
'a4' | 0.9958932064677039
'a2' | 0.9950371902099892
'b2' | 0.09950371902099892
'b1' | 0.0

# The contract's filtered form: the attribute's rows within the probed lists.
SELECT id, cosine(taste, 'a1') AS s FROM users WHERE region = 'north' ORDER BY s DESC LIMIT 10 WITH (probes = 64);
----
id:string | s:float
'a1' | 1.0
'a3' | 1.0
'b1' | 0.0
'b3' | 0.0
'c1' | -0.7071067811865475
'c3' | -0.7432941462471664

# Lookalikes and clustering work as without an index. north's centroid is
# (-1/6, 0): one probe reads the (-10, -10) list, whose users outside north
# are two, and the search goes on to the next list for a third.
CREATE SEGMENT north AS region = 'north';
----
CREATE SEGMENT

SELECT id, cosine(taste, centroid(taste, north)) AS s FROM users WHERE NOT IN SEGMENT north ORDER BY s DESC LIMIT 3;
----
id:string | s:float
'c4' | 0.7071067701708947
'c2' | 0.6689647067015728
'b4' | 0.09053574536797473

CLUSTER users BY taste INTO 3 SEED 1;
----
cluster:int | size:int | centroid:vector
0 | 4 | [0.0, 10.0]
1 | 4 | [-10.0, -10.0]
2 | 4 | [10.0, 0.0]

SELECT id, l2_distance(taste, [0, 9.5]) AS d FROM users ORDER BY d ASC LIMIT 2;
----
id:string | d:float
'b1' | 0.5
'b3' | 0.5

EXPLAIN SELECT id, cosine(taste, 'a1') AS s FROM users ORDER BY s DESC LIMIT 10;
----
plan:string
'Projection: id, s'
'  VectorTopK: 10 by s DESC over IVF index taste_ivf (probes 1 of 3 lists, the best 4x re-ranked exactly; a filter that keeps fewer rows than the probes scan ranks those exactly), as of 2026-11-15T00:00:00Z'
'    Fetch: features for the 10 ranked users'

EXPLAIN SELECT id, cosine(taste, 'a1') AS s FROM users WHERE region = 'north' ORDER BY s DESC LIMIT 10 WITH (probes = 64);
----
plan:string
'Projection: id, s'
'  VectorTopK: 10 by s DESC over IVF index taste_ivf (probes 3 of 3 lists (64 asked, clamped to the lists), the best 4x re-ranked exactly; a filter that keeps fewer rows than the probes scan ranks those exactly), as of 2026-11-15T00:00:00Z'
'    IndexFilter: region = 'north' (on the index's attributes, before ranking)'
'      Fetch: features, attributes for the 10 ranked users'

EXPLAIN SELECT id, cosine(taste, 'a1') AS s FROM users ORDER BY s DESC LIMIT 10 WITH (exact = true);
----
plan:string
'Projection: id, s'
'  VectorTopK: 10 by s DESC over the vector index of taste, exact (WITH (exact = true) passes over index taste_ivf), as of 2026-11-15T00:00:00Z'
'    Fetch: features for the 10 ranked users'

# Updates move a user to its new nearest list: a1 joins the (0, 10) cluster.
INSERT INTO view (user, ts, v) VALUES ('a1', 2, [0, 1000000]);
----
INSERT 1

SELECT id FROM users ORDER BY dot(taste, [0, 1]) DESC LIMIT 3;
----
id:string
'a1'
'b4'
'b1'

DELETE USER 'b4';
----
DELETE 1

# One probe (the four users of a1's new list), then the next list for a fifth.
SELECT id FROM users ORDER BY dot(taste, [0, 1]) DESC LIMIT 5;
----
id:string
'a1'
'b1'
'b2'
'b3'
'a2'

# Bad input.
CREATE INDEX r ON users USING ivf (region);
----
error: 'region' is an attribute, not a vector: an index is built on a vector (line 1, column 36)
  CREATE INDEX r ON users USING ivf (region);
                                     ^^^^^^

CREATE INDEX t2 ON users USING ivf (taste);
----
error: vector 'taste' has an index already, 'taste_ivf'; DROP INDEX taste_ivf first (line 1, column 14)
  CREATE INDEX t2 ON users USING ivf (taste);
               ^^

CREATE INDEX t3 ON users USING hnsw (taste);
----
error: unknown index method 'hnsw'; the method is ivf (an inverted file of int8 codes) (line 1, column 32)
  CREATE INDEX t3 ON users USING hnsw (taste);
                                 ^^^^

CREATE INDEX t3 ON people USING ivf (taste);
----
error: an index is built on the users table, not 'people' (line 1, column 20)
  CREATE INDEX t3 ON people USING ivf (taste);
                     ^^^^^^

CREATE INDEX t3 ON users USING ivf (tast);
----
error: unknown vector 'tast' (did you mean 'taste'?) (line 1, column 37)
  CREATE INDEX t3 ON users USING ivf (tast);
                                      ^^^^

DROP INDEX taste_ivf;
----
DROP INDEX

CREATE INDEX t3 ON users USING ivf (taste) WITH (lists = 0);
----
error: lists must be a whole number 1..=16384, got 0 (line 1, column 58)
  CREATE INDEX t3 ON users USING ivf (taste) WITH (lists = 0);
                                                           ^

CREATE INDEX t3 ON users USING ivf (taste) WITH (lists = 100000000);
----
error: lists must be a whole number 1..=16384, got 100000000 (line 1, column 58)
  CREATE INDEX t3 ON users USING ivf (taste) WITH (lists = 100000000);
                                                           ^^^^^^^^^

CREATE INDEX t3 ON users USING ivf (taste) WITH (lists = 4, probes = 5);
----
error: probes (5) must be at most lists (4) (line 1, column 70)
  CREATE INDEX t3 ON users USING ivf (taste) WITH (lists = 4, probes = 5);
                                                                       ^

CREATE INDEX t3 ON users USING ivf (taste) WITH (lists = 4, nprobe = 2);
----
error: unknown setting 'nprobe'; this statement takes lists, probes, rerank (line 1, column 61)
  CREATE INDEX t3 ON users USING ivf (taste) WITH (lists = 4, nprobe = 2);
                                                              ^^^^^^

CREATE INDEX t3 ON users USING ivf (taste) WITH (lists = 4, lists = 2);
----
error: lists is given twice (line 1, column 61)
  CREATE INDEX t3 ON users USING ivf (taste) WITH (lists = 4, lists = 2);
                                                              ^^^^^

CREATE INDEX t3 ON users USING ivf (taste) WITH (lists = 'many');
----
error: lists must be a whole number 1..=16384, got 'many' (line 1, column 58)
  CREATE INDEX t3 ON users USING ivf (taste) WITH (lists = 'many');
                                                           ^^^^^^

SELECT id, cosine(taste, 'a2') AS s FROM users ORDER BY s DESC LIMIT 3 WITH (probez = 2);
----
error: unknown setting 'probez'; this statement takes probes, exact (line 1, column 78)
  SELECT id, cosine(taste, 'a2') AS s FROM users ORDER BY s DESC LIMIT 3 WITH (probez = 2);
                                                                               ^^^^^^

SELECT id FROM users WHERE region = 'north' WITH (probes = 2);
----
error: WITH (…) sets how a similarity top-k ranks users (ORDER BY a similarity, best first, with a LIMIT, of today's vectors); this query does not rank on the vector index (line 1, column 51)
  SELECT id FROM users WHERE region = 'north' WITH (probes = 2);
                                                    ^^^^^^

DROP INDEX taste_ivf;
----
error: unknown index 'taste_ivf' (line 1, column 12)
  DROP INDEX taste_ivf;
             ^^^^^^^^^

DROP INDEX IF EXISTS taste_ivf;
----
DROP INDEX skipped: no index 'taste_ivf'

# An index on more lists than vectors is built once there are enough; until
# then queries scan exactly, and DESCRIBE says so.
CREATE INDEX big_ivf ON users USING ivf (taste) WITH (lists = 64);
----
CREATE INDEX

DESCRIBE big_ivf;
----
kind:string | name:string | definition:string
'index' | 'big_ivf' | 'CREATE INDEX big_ivf ON users USING ivf (taste) WITH (lists = 64, probes = 16, rerank = 4) -- not built: the vector has 11 rows, fewer than its 64 lists; queries scan exactly until it has'

EXPLAIN SELECT id, cosine(taste, 'a2') AS s FROM users ORDER BY s DESC LIMIT 2 WITH (probes = 500);
----
plan:string
'Projection: id, s'
'  VectorTopK: 2 by s DESC over the vector index of taste, exact (index big_ivf is not built: 11 vectors, fewer than its 64 lists), as of 2026-11-15T00:00:00Z'
'    Fetch: features for the 2 ranked users'

SELECT id, cosine(taste, 'a2') AS s FROM users ORDER BY s DESC LIMIT 2;
----
id:string | s:float
'a2' | 1.0
'a3' | 0.9950371902099892

ANALYZE INDEX big_ivf;
----
error: index 'big_ivf' is not built yet: it is built once its vector has at least 64 rows, one per list (line 1, column 15)
  ANALYZE INDEX big_ivf;
                ^^^^^^^

ANALYZE INDEX nothing;
----
error: unknown index 'nothing' (line 1, column 15)
  ANALYZE INDEX nothing;
                ^^^^^^^

# Dropping the vector drops its index.
DROP VECTOR taste;
----
DROP VECTOR

SHOW INDEXES;
----
name:string | vector:string | method:string | lists:int | probes:int | rerank:int | rows:int | recall_at_10:float
(no rows)

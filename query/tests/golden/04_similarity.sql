# Vectors small enough to check by hand. taste is an ewma of one event each,
# so it equals the event's vector.
CREATE ATTRIBUTE region STRING ON signup;
----
CREATE ATTRIBUTE

CREATE FEATURE spend ON purchase AS SUM(amount);
----
CREATE FEATURE

CREATE VECTOR taste ON view AS EWMA(item_vec) DIM 2 HALF_LIFE '14d';
----
CREATE VECTOR

CREATE VECTOR pref ON impression AS SGD(item_vec, clicked) DIM 2 LEARNING_RATE 0.5;
----
CREATE VECTOR

CREATE SEGMENT big AS spend > 10;
----
CREATE SEGMENT

INSERT INTO view (user, ts, item_vec) VALUES ('a', 1, [1, 0]), ('b', 1, [0, 1]), ('c', 1, [1, 1]), ('d', 1, [3, 4]), ('e', 1, [0, 0]), ('f', 1, [-1, 0]);
----
INSERT 6

INSERT INTO signup (user, ts, region) VALUES ('a', 1, 'north'), ('b', 1, 'north'), ('c', 1, 'south'), ('d', 1, 'north'), ('g', 1, 'north');
----
INSERT 5

INSERT INTO purchase (user, ts, amount) VALUES ('c', 1, 20), ('d', 1, 30), ('f', 1, 5);
----
INSERT 3

# cos(a, ·): b 0, c 1/√2, d 3/5, f -1; e has no direction; g has no vector.
SELECT id, cosine(taste, 'a') AS score FROM users WHERE id != 'a' ORDER BY score DESC LIMIT 10;
----
id:string | score:float
'c' | 0.7071067811865475
'd' | 0.6
'b' | 0.0
'f' | -1.0

SELECT id, cosine(taste, 'a') AS score FROM users WHERE id != 'a' AND region = 'north' ORDER BY score DESC LIMIT 10;
----
id:string | score:float
'd' | 0.6
'b' | 0.0

SELECT id, dot(taste, [1.0, 2.0]) AS s FROM users ORDER BY s DESC LIMIT 3;
----
id:string | s:float
'd' | 11.0
'c' | 3.0
'b' | 2.0

SELECT id, l2_distance(taste, [0.0, 0.0]) AS d FROM users ORDER BY d ASC LIMIT 5;
----
id:string | d:float
'e' | 0.0
'a' | 1.0
'b' | 1.0
'f' | 1.0
'c' | 1.4142135623730951

# Lookalikes: the centroid of big (c and d) is [2, 2.5].
SELECT id, cosine(taste, centroid(taste, big)) AS s FROM users WHERE NOT IN SEGMENT big ORDER BY s DESC LIMIT 100;
----
id:string | s:float
'b' | 0.7808688094430304
'a' | 0.6246950475544243
'f' | -0.6246950475544243

# A filter that reads features is evaluated by a scan before ranking.
SELECT id FROM users WHERE spend > 1 ORDER BY dot(taste, [1, 1]) DESC LIMIT 2;
----
id:string
'd'
'c'

# Not a top-k on the index (ascending cosine): users without a score are still left out.
SELECT id, cosine(taste, [1, 0]) AS s FROM users ORDER BY s ASC LIMIT 3;
----
id:string | s:float
'f' | -1.0
'b' | 0.0
'd' | 0.6

SELECT id, cosine(taste, 'a'), taste FROM users WHERE id = 'c';
----
id:string | cosine(taste, 'a'):float | taste:vector
'c' | 0.7071067811865475 | [1.0, 1.0]

SELECT id FROM users ORDER BY cosine(pref, 'a') DESC LIMIT 3;
----
id:string
(no rows)

INSERT INTO impression (user, ts, item_vec, clicked) VALUES ('a', 1, [1, 0], 1), ('b', 1, [1, 0], 0);
----
INSERT 2

SELECT id, pref FROM users ORDER BY dot(pref, [1, 0]) DESC LIMIT 5;
----
id:string | pref:vector
'a' | [0.25, 0.0]
'b' | [-0.25, 0.0]

DELETE USER 'c';
----
DELETE 1

SELECT id FROM users ORDER BY cosine(taste, [1, 1]) DESC LIMIT 2;
----
id:string
'd'
'a'

EXPLAIN SELECT id, cosine(taste, 'a') AS score FROM users WHERE id != 'a' AND region = 'north' ORDER BY score DESC LIMIT 10;
----
plan:string
'Projection: id, score'
'  VectorTopK: 10 by score DESC over the vector index of taste, exact, as of 2026-11-15T00:00:00Z'
'    IndexFilter: id != 'a' AND region = 'north' (on the index's attributes, before ranking)'
'      Fetch: features, attributes for the 10 ranked users'

EXPLAIN SELECT id FROM users WHERE spend > 1 ORDER BY dot(taste, [1, 1]) DESC LIMIT 2;
----
plan:string
'Projection: id'
'  VectorTopK: 2 by dot(taste, [1, 1]) DESC over the vector index of taste, exact, as of 2026-11-15T00:00:00Z'
'    Filter: spend > 1 (a scan before ranking)'
'      Fetch: features for the 2 ranked users'

# Errors.
SELECT id FROM users ORDER BY cosine(taste, 'nobody') DESC LIMIT 3;
----
error: unknown user 'nobody' (line 1, column 45)
  SELECT id FROM users ORDER BY cosine(taste, 'nobody') DESC LIMIT 3;
                                              ^^^^^^^^

SELECT id FROM users ORDER BY cosine(taste, [1, 2, 3]) DESC LIMIT 3;
----
error: vector 'taste' has dimension 2, but the value has 3 elements (line 1, column 45)
  SELECT id FROM users ORDER BY cosine(taste, [1, 2, 3]) DESC LIMIT 3;
                                              ^^^^^^^^^

SELECT id FROM users ORDER BY cosine(tast, 'a') DESC LIMIT 3;
----
error: unknown vector 'tast' (did you mean 'taste'?) (line 1, column 38)
  SELECT id FROM users ORDER BY cosine(tast, 'a') DESC LIMIT 3;
                                       ^^^^

SELECT id FROM users ORDER BY cosine(taste, 42) DESC LIMIT 3;
----
error: expected a user id ('u1'), a vector ([0.1, …]), centroid(vector, segment) or NULL (line 1, column 45)
  SELECT id FROM users ORDER BY cosine(taste, 42) DESC LIMIT 3;
                                              ^^

SELECT id FROM users ORDER BY cosine(taste, centroid(taste, bigg)) DESC LIMIT 3;
----
error: unknown segment 'bigg' (did you mean 'big'?) (line 1, column 61)
  SELECT id FROM users ORDER BY cosine(taste, centroid(taste, bigg)) DESC LIMIT 3;
                                                              ^^^^

SELECT centroid(taste, big) FROM users;
----
error: centroid(vector, segment) is only a target of cosine, dot or l2_distance (line 1, column 8)
  SELECT centroid(taste, big) FROM users;
         ^^^^^^^^^^^^^^^^^^^

# g exists but has no vector: every score is NULL, so nobody ranks.
SELECT id FROM users ORDER BY cosine(taste, 'g') DESC LIMIT 3;
----
id:string
(no rows)

# sum and avg of vectors add them up element-wise (NULLs left out): a + b +
# d + e + f = [3, 5] over 5 vectors (c was deleted); g has none.
SELECT sum(taste) AS s, avg(taste) AS m, count(taste) AS n FROM users;
----
s:vector | m:vector | n:int
[3.0, 5.0] | [0.6, 1.0] | 5

# north: a, b, d (g has no vector) = [4, 5] / 3; no region: e, f = [-1, 0] / 2.
SELECT region, avg(taste) AS m FROM users GROUP BY region ORDER BY region;
----
region:string | m:vector
'north' | [1.3333334, 1.6666666]
NULL | [-0.5, 0.0]

SELECT avg(taste) AS m FROM users WHERE id = 'g';
----
m:vector
NULL

# Squared distances to [0, 0] and [2, 2]: a 1|5, b 1|5, d 25|5, e 0|8,
# f 1|13; g has no vector.
SELECT id, nearest_centroid(taste, [[0, 0], [2, 2]]) AS c FROM users ORDER BY id;
----
id:string | c:int
'a' | 0
'b' | 0
'd' | 1
'e' | 0
'f' | 0
'g' | NULL

# b [0, 1] is 1 from [0, 0] and from [0, 2]: a tie goes to the first.
SELECT nearest_centroid(taste, [[0, 2], [0, 0]]) AS first, nearest_centroid(taste, [[0, 0], [0, 2]]) AS second FROM users WHERE id = 'b';
----
first:int | second:int
0 | 0

SELECT nearest_centroid(taste, [[1, 2, 3]]) FROM users;
----
error: vector 'taste' has dimension 2, but the value has 3 elements (line 1, column 33)
  SELECT nearest_centroid(taste, [[1, 2, 3]]) FROM users;
                                  ^^^^^^^^^

SELECT nearest_centroid(taste, []) FROM users;
----
error: nearest_centroid needs at least one centroid (line 1, column 32)
  SELECT nearest_centroid(taste, []) FROM users;
                                 ^^

# A NULL target: nothing to compare with, so every score is NULL.
SELECT id, cosine(taste, NULL) AS s FROM users WHERE id = 'a';
----
id:string | s:float
'a' | NULL

# XXH3-64 (seed 0) of the empty string is 0x2D06800538D394C2; of 'u1' with
# seed 42, -7022703206081654043 (the reference implementation's figures).
SELECT hash('') AS empty, hash('u1', 42) AS u1, hash('u1', 41) = hash('u1', 42) AS same, hash(NULL) AS none;
----
empty:int | u1:int | same:bool | none:int
3244421341483603138 | -7022703206081654043 | false | NULL

SELECT hash('u1', 4.5);
----
error: the seed of hash() is an integer literal (line 1, column 19)
  SELECT hash('u1', 4.5);
                    ^^^

# Three planted clusters in the plane: around (10, 0), (0, 10) and (-10, -10).
CREATE ATTRIBUTE region STRING ON signup;
----
CREATE ATTRIBUTE

CREATE VECTOR taste ON view AS EWMA(item_vec) DIM 2 HALF_LIFE '14d';
----
CREATE VECTOR

INSERT INTO view (user, ts, item_vec) VALUES ('n0', 1, [10.0, 0.0]), ('n1', 1, [10.2, 0.1]), ('n2', 1, [9.9, -0.1]), ('n3', 1, [10.1, 0.2]), ('e4', 1, [0.0, 10.0]), ('e5', 1, [0.1, 10.1]), ('e6', 1, [-0.2, 9.8]), ('s7', 1, [-10.0, -10.0]), ('s8', 1, [-9.8, -10.1]);
----
INSERT 9

INSERT INTO signup (user, ts, region) VALUES ('n0', 1, 'north'), ('n1', 1, 'north'), ('e4', 1, 'north'), ('s7', 1, 'south');
----
INSERT 4

CLUSTER users BY taste INTO 3 SEED 7;
----
cluster:int | size:int | centroid:vector
0 | 4 | [10.05, 0.05]
1 | 3 | [-0.033333335, 9.966667]
2 | 2 | [-9.9, -10.05]

CLUSTER users BY taste INTO 3 SEED 7;
----
cluster:int | size:int | centroid:vector
0 | 4 | [10.05, 0.05]
1 | 3 | [-0.033333335, 9.966667]
2 | 2 | [-9.9, -10.05]

CLUSTER users BY taste INTO 2 WHERE region = 'north' SEED 1;
----
cluster:int | size:int | centroid:vector
0 | 2 | [10.1, 0.05]
1 | 1 | [0.0, 10.0]

CREATE SEGMENTS taste_group FROM CLUSTER users BY taste INTO 3 SEED 7;
----
CREATE SEGMENTS 3

SHOW SEGMENTS;
----
name:string | definition:string
'taste_group_0' | 'CREATE SEGMENT taste_group_0 AS nearest_cluster(taste_group) = 0'
'taste_group_1' | 'CREATE SEGMENT taste_group_1 AS nearest_cluster(taste_group) = 1'
'taste_group_2' | 'CREATE SEGMENT taste_group_2 AS nearest_cluster(taste_group) = 2'

DESCRIBE taste_group;
----
kind:string | name:string | definition:string
'segment group' | 'taste_group' | 'CREATE SEGMENTS taste_group FROM CLUSTER users BY taste INTO 3 SEED 7'

SELECT id, nearest_cluster(taste_group) AS c FROM users ORDER BY c, id;
----
id:string | c:int
'n0' | 0
'n1' | 0
'n2' | 0
'n3' | 0
'e4' | 1
'e5' | 1
'e6' | 1
's7' | 2
's8' | 2

SELECT count(*) FROM users WHERE IN SEGMENT taste_group_0;
----
count(*):int
4

SELECT id FROM users WHERE IN SEGMENT taste_group_1 ORDER BY cosine(taste, [1, 0]) DESC LIMIT 2;
----
id:string
'e5'
'e4'

# A user who arrives later joins the segment of the nearest stored centroid.
INSERT INTO view (user, ts, item_vec) VALUES ('late', 1, [-9, -9]);
----
INSERT 1

SELECT id FROM users WHERE nearest_cluster(taste_group) = nearest_cluster(taste_group) AND id = 'late';
----
id:string
'late'

SELECT nearest_cluster(taste_group) FROM users WHERE id = 'late';
----
nearest_cluster(taste_group):int
2

DROP SEGMENT taste_group_1;
----
error: segment 'taste_group_1' belongs to the segment group 'taste_group'; drop the whole group with DROP SEGMENTS taste_group (line 1, column 14)
  DROP SEGMENT taste_group_1;
               ^^^^^^^^^^^^^

DROP VECTOR taste;
----
error: vector 'taste' is clustered by the segment group 'taste_group'; drop it first with DROP SEGMENTS taste_group (line 1, column 13)
  DROP VECTOR taste;
              ^^^^^

CREATE SEGMENTS taste_group FROM CLUSTER users BY taste INTO 2;
----
error: segment group 'taste_group' already exists (line 1, column 17)
  CREATE SEGMENTS taste_group FROM CLUSTER users BY taste INTO 2;
                  ^^^^^^^^^^^

CREATE SEGMENT taste_group_9 AS TRUE;
----
CREATE SEGMENT

DROP SEGMENT taste_group_9;
----
DROP SEGMENT

CLUSTER users BY taste INTO 40;
----
error: cannot cluster 'taste': cannot make 40 clusters of 10 vectors (line 1, column 18)
  CLUSTER users BY taste INTO 40;
                   ^^^^^

CLUSTER users BY tast INTO 2;
----
error: unknown vector 'tast' (did you mean 'taste'?) (line 1, column 18)
  CLUSTER users BY tast INTO 2;
                   ^^^^

CLUSTER users BY taste INTO 0;
----
error: syntax error: the number of clusters must be at least 1 (line 1, column 29)
  CLUSTER users BY taste INTO 0;
                              ^

DROP SEGMENTS taste_grop;
----
error: unknown segment group 'taste_grop' (did you mean 'taste_group'?) (line 1, column 15)
  DROP SEGMENTS taste_grop;
                ^^^^^^^^^^

DROP SEGMENTS taste_group;
----
DROP SEGMENTS

SHOW SEGMENTS;
----
name:string | definition:string
(no rows)

# SQL forms with PostgreSQL's meaning. The clock reads 2026-11-15T00:00:00Z;
# the history keeps 30 days, so AS OF is exact.
ALTER DATABASE SET HISTORY '30d';
----
ALTER DATABASE

CREATE ATTRIBUTE region STRING;
----
CREATE ATTRIBUTE

CREATE FEATURE spend ON purchase AS SUM(amount);
----
CREATE FEATURE

CREATE FEATURE buys ON purchase AS COUNT();
----
CREATE FEATURE

INSERT INTO purchase (user, ts, amount) VALUES ('u1', '2026-11-01', 10.0), ('u2', '2026-11-02', 20.0), ('u3', '2026-11-03', 30.0), ('u4', '2026-11-04', 40.0), ('u5', '2026-11-05', 100.0), ('u5', '2026-11-06', 1.0);
----
INSERT 6

UPDATE users SET region = 'north' WHERE id IN ('u1', 'u2', 'u3');
----
UPDATE 3

UPDATE users SET region = 'South' WHERE id IN ('u4', 'u5');
----
UPDATE 2

# Constants, without FROM.
SELECT 1 + 1, now(), round(2.5), round(-2.5), round(3.14159, 2), sqrt(16), ln(1), exp(0), pow(2, 10), greatest(1, 5, 3), least('b', 'a'), floor(-1.5), ceil(1.2);
----
1 + 1:int | now():int | round(2.5):float | round(-2.5):float | round(3.14159, 2):float | sqrt(16):float | ln(1):float | exp(0):float | pow(2, 10):float | greatest(1, 5, 3):int | least('b', 'a'):string | floor(-1.5):float | ceil(1.2):float
2 | 1794700800000 | 3.0 | -3.0 | 3.14 | 4.0 | 0.0 | 1.0 | 1024.0 | 5 | 'a' | -2.0 | 2.0

SELECT sqrt(-1), ln(0), greatest(NULL, 2), round(7);
----
sqrt(-1):float | ln(0):float | greatest(NULL, 2):int | round(7):int
NULL | NULL | 2 | 7

SELECT id;
----
error: a select without FROM reads no users: add FROM users to read this (line 1, column 8)
  SELECT id;
         ^^

# OFFSET, in either order with LIMIT.
SELECT id FROM users ORDER BY id LIMIT 2 OFFSET 1;
----
id:string
'u2'
'u3'

SELECT id FROM users ORDER BY spend DESC OFFSET 3;
----
id:string
'u2'
'u1'

SELECT id FROM users ORDER BY id OFFSET 4 LIMIT 5;
----
id:string
'u5'

# DISTINCT, HAVING and count(DISTINCT …).
SELECT DISTINCT region FROM users ORDER BY region;
----
region:string
'South'
'north'

SELECT DISTINCT buys FROM users ORDER BY buys DESC LIMIT 1;
----
buys:int
2

SELECT region, count(*), sum(spend) FROM users GROUP BY region HAVING sum(spend) > 100 ORDER BY region;
----
region:string | count(*):int | sum(spend):float
'South' | 2 | 141.0

SELECT count(DISTINCT region), count(DISTINCT buys), count(region) FROM users;
----
count(DISTINCT region):int | count(DISTINCT buys):int | count(region):int
2 | 2 | 5

SELECT count(*) FROM users HAVING count(*) > 10;
----
count(*):int
(no rows)

# Spread: sample and population, and exact percentiles (interpolated).
SELECT stddev(spend), variance(spend), stddev_pop(spend), var_pop(spend) FROM users;
----
stddev(spend):float | variance(spend):float | stddev_pop(spend):float | var_pop(spend):float
35.77988261579403 | 1280.2 | 32.00249990235138 | 1024.16

SELECT median(spend), percentile(spend, 0.9), percentile(spend, 0), percentile(spend, 1) FROM users;
----
median(spend):float | percentile(spend, 0.9):float | percentile(spend, 0):float | percentile(spend, 1):float
30.0 | 76.60000000000001 | 10.0 | 101.0

SELECT region, median(spend) FROM users GROUP BY region ORDER BY region;
----
region:string | median(spend):float
'South' | 70.5
'north' | 20.0

# CASE, LIKE, ILIKE.
SELECT id, CASE WHEN spend >= 100 THEN 'big' WHEN spend >= 30 THEN 'mid' ELSE 'small' END AS size FROM users ORDER BY id;
----
id:string | size:string
'u1' | 'small'
'u2' | 'small'
'u3' | 'mid'
'u4' | 'mid'
'u5' | 'big'

SELECT id, CASE region WHEN 'north' THEN 1 WHEN 'South' THEN 2 END FROM users ORDER BY id;
----
id:string | CASE region WHEN 'north' THEN 1 WHEN 'South' THEN 2 END:int
'u1' | 1
'u2' | 1
'u3' | 1
'u4' | 2
'u5' | 2

SELECT id FROM users WHERE region LIKE 'n%' ORDER BY id;
----
id:string
'u1'
'u2'
'u3'

SELECT id FROM users WHERE region ILIKE 'SOUTH' ORDER BY id;
----
id:string
'u4'
'u5'

SELECT id FROM users WHERE region NOT LIKE '_orth' ORDER BY id;
----
id:string
'u4'
'u5'

SELECT id FROM users WHERE id LIKE 'u_' AND id NOT ILIKE '%1' ORDER BY id;
----
id:string
'u2'
'u3'
'u4'
'u5'

# AS OF after WHERE, and dates alone.
SELECT id, spend FROM users WHERE spend > 0 AS OF '2026-11-03' ORDER BY id;
----
id:string | spend:float
'u1' | 10.0
'u2' | 20.0
'u3' | 30.0

# Errors.
SELEC id FROM users;
----
error: syntax error: expected a statement (SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, SHOW, DESCRIBE, BUCKETS, CLUSTER, ANALYZE, EXPLAIN or VACUUM), found 'SELEC' (did you mean SELECT?) (line 1, column 1)
  SELEC id FROM users;
  ^^^^^

SELECT id FROM users LIMT 5;
----
error: syntax error: expected ';' or the end of the statement (or a clause: WHERE, GROUP, HAVING, ORDER, LIMIT, OFFSET, AS OF), found 'LIMT' (did you mean LIMIT?) (line 1, column 22)
  SELECT id FROM users LIMT 5;
                       ^^^^

SELECT id v1 FROM users;
----
error: syntax error: expected ',' or FROM, found 'v1': to name a column, write id AS v1 (line 1, column 11)
  SELECT id v1 FROM users;
            ^^

SELECT id FROM users AS OF '2026-11-03' AS OF '2026-11-04';
----
error: syntax error: AS OF is given twice (line 1, column 41)
  SELECT id FROM users AS OF '2026-11-03' AS OF '2026-11-04';
                                          ^^

SELECT CASE WHEN 1 THEN 2 END;
----
error: type mismatch in WHEN: expected bool, found int (line 1, column 18)
  SELECT CASE WHEN 1 THEN 2 END;
                   ^

SELECT CASE WHEN TRUE THEN 'a' ELSE 2 END;
----
error: type mismatch in CASE results: expected string, found int (line 1, column 37)
  SELECT CASE WHEN TRUE THEN 'a' ELSE 2 END;
                                      ^

SELECT id FROM users WHERE spend LIKE '1%';
----
error: type mismatch in LIKE: expected string, found float (line 1, column 28)
  SELECT id FROM users WHERE spend LIKE '1%';
                             ^^^^^

SELECT percentile(spend, 2) FROM users;
----
error: percentile takes 2 arguments: percentile(expression, fraction), the fraction a number from 0 to 1 (line 1, column 8)
  SELECT percentile(spend, 2) FROM users;
         ^^^^^^^^^^^^^^^^^^^

SELECT sum(DISTINCT spend) FROM users;
----
error: DISTINCT goes only in count(DISTINCT …), not in sum() (line 1, column 21)
  SELECT sum(DISTINCT spend) FROM users;
                      ^^^^^

SELECT stddev(region) FROM users;
----
error: type mismatch in stddev(): expected a number, found string (line 1, column 8)
  SELECT stddev(region) FROM users;
         ^^^^^^^^^^^^^

SELECT round(1, 2, 3);
----
error: round takes 1 or 2 arguments: round(x) or round(x, digits) (line 1, column 8)
  SELECT round(1, 2, 3);
         ^^^^^^^^^^^^^

SELECT id FROM users HAVING spend > 1;
----
error: column 'id' must appear in GROUP BY or inside an aggregate such as count(), sum() or avg() (line 1, column 8)
  SELECT id FROM users HAVING spend > 1;
         ^^

SELECT * ;
----
error: SELECT * needs FROM users (line 1, column 8)
  SELECT * ;
         ^

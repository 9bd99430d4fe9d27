CREATE ATTRIBUTE age INT;
----
CREATE ATTRIBUTE

CREATE ATTRIBUTE region STRING;
----
CREATE ATTRIBUTE

CREATE FEATURE spend ON purchase AS SUM(amount);
----
CREATE FEATURE

CREATE WINDOW views ON view BUCKET '1h' RETAIN '30d';
----
CREATE WINDOW

CREATE VECTOR taste ON view AS EWMA(item_vec) DIM 3 HALF_LIFE '14d';
----
CREATE VECTOR

CREATE SEGMENT adults AS age >= 18;
----
CREATE SEGMENT

# Inserts.
INSERT INTO purchse (user, ts, amount) VALUES ('u1', 1, 2.0);
----
error: no attribute, feature, window or vector is bound to event type 'purchse' (line 1, column 13)
  INSERT INTO purchse (user, ts, amount) VALUES ('u1', 1, 2.0);
              ^^^^^^^

INSERT INTO purchase (user, amount) VALUES ('u1', 2.0);
----
error: INSERT needs the columns user and ts (line 1, column 23)
  INSERT INTO purchase (user, amount) VALUES ('u1', 2.0);
                        ^^^^^^^^^^^^

INSERT INTO purchase (user, ts, amount, amount) VALUES ('u1', 1, 2.0, 3.0);
----
error: column 'amount' is given twice (line 1, column 41)
  INSERT INTO purchase (user, ts, amount, amount) VALUES ('u1', 1, 2.0, 3.0);
                                          ^^^^^^

INSERT INTO purchase (user, ts, amount) VALUES ('u1', 1);
----
error: a row has 2 values for 3 columns (line 1, column 49)
  INSERT INTO purchase (user, ts, amount) VALUES ('u1', 1);
                                                  ^^^^^^^

INSERT INTO purchase (user, ts, amount) VALUES ('u1', 1, 'lots');
----
error: row 1 field 'amount': expected a number, got string (feature 'spend'); nothing was written (line 1, column 58)
  INSERT INTO purchase (user, ts, amount) VALUES ('u1', 1, 'lots');
                                                           ^^^^^^

INSERT INTO purchase (user, ts, amount) VALUES ('u1', 1, 2.0), ('u2', 'yesterday', 3.0);
----
error: 'yesterday' is not an RFC 3339 timestamp ('2026-11-01T10:00:00Z') or a date ('2026-11-01'): the 'year' component could not be parsed (line 1, column 71)
  INSERT INTO purchase (user, ts, amount) VALUES ('u1', 1, 2.0), ('u2', 'yesterday', 3.0);
                                                                        ^^^^^^^^^^^

INSERT INTO purchase (user, ts, amount) VALUES (42, 1, 2.0);
----
error: type mismatch in column user: expected string, found int (line 1, column 49)
  INSERT INTO purchase (user, ts, amount) VALUES (42, 1, 2.0);
                                                  ^^

INSERT INTO purchase (user, ts, amount) VALUES ('u1', 1, 2.0), ('u2', 2, amount);
----
error: expected a constant: a string, number, bool, NULL or [vector] (line 1, column 74)
  INSERT INTO purchase (user, ts, amount) VALUES ('u1', 1, 2.0), ('u2', 2, amount);
                                                                           ^^^^^^

INSERT INTO view (user, ts, item_vec) VALUES ('u1', 1, [1, 2, 3]), ('u1', 2, [1, 2]);
----
error: vector 'taste' has dimension 3, but the value has 2 elements (line 1, column 78)
  INSERT INTO view (user, ts, item_vec) VALUES ('u1', 1, [1, 2, 3]), ('u1', 2, [1, 2]);
                                                                               ^^^^^^

# Missing is not wrong: a view without item_vec leaves taste as it was.
INSERT INTO view (user, ts) VALUES ('u1', 1);
----
INSERT 1

INSERT INTO view (user, ts, item_vec) VALUES ('u1', 1, [1e39, 0, 0]);
----
error: vector element 1e39 is beyond the range of a 32-bit float (line 1, column 57)
  INSERT INTO view (user, ts, item_vec) VALUES ('u1', 1, [1e39, 0, 0]);
                                                          ^^^^

INSERT INTO purchase (user, ts, amount) VALUES ('', 1, 2.0);
----
error: row 1 field 'user': user id is empty; nothing was written (line 1, column 49)
  INSERT INTO purchase (user, ts, amount) VALUES ('', 1, 2.0);
                                                  ^^

INSERT INTO purchase (user, ts, amount) VALUES ('u1', 1, 1e200);
----
error: row 1 field 'amount': 1e200 exceeds the largest accepted magnitude, 1e100 (feature 'spend'); nothing was written (line 1, column 58)
  INSERT INTO purchase (user, ts, amount) VALUES ('u1', 1, 1e200);
                                                           ^^^^^

# Nothing of the refused batches was written.
SELECT count(*) FROM users;
----
count(*):int
1

# Updates.
UPDATE users SET agee = 3 WHERE id = 'u1';
----
error: unknown attribute 'agee' (did you mean 'age'?) (line 1, column 18)
  UPDATE users SET agee = 3 WHERE id = 'u1';
                   ^^^^

UPDATE users SET age = 'old' WHERE id = 'u1';
----
error: type mismatch in attribute 'age': expected int, found string (line 1, column 24)
  UPDATE users SET age = 'old' WHERE id = 'u1';
                         ^^^^^

UPDATE users SET age = 3.5 WHERE id = 'u1';
----
error: type mismatch in attribute 'age': expected int, found float (line 1, column 24)
  UPDATE users SET age = 3.5 WHERE id = 'u1';
                         ^^^

UPDATE users SET age = 30.0, region = 'north' WHERE id = 'u1';
----
UPDATE 1

UPDATE users SET age = 31 WHERE region = 'north';
----
UPDATE 1

SELECT id, age, region FROM users;
----
id:string | age:int | region:string
'u1' | 31 | 'north'

# Queries.
SELECT id FROM usres;
----
error: unknown table 'usres' (line 1, column 16)
  SELECT id FROM usres;
                 ^^^^^

SELECT id FROM users WHERE regoin = 'north';
----
error: unknown column 'regoin' (did you mean 'region'?) (line 1, column 28)
  SELECT id FROM users WHERE regoin = 'north';
                             ^^^^^^

SELECT id FROM users WHERE age = 'north';
----
error: type mismatch in comparison '=': expected int, found string (line 1, column 34)
  SELECT id FROM users WHERE age = 'north';
                                   ^^^^^^^

SELECT id FROM users WHERE age;
----
error: type mismatch in WHERE: expected bool, found int (line 1, column 28)
  SELECT id FROM users WHERE age;
                             ^^^

SELECT id FROM users WHERE spend > 1 AND region;
----
error: type mismatch in AND: expected bool, found string (line 1, column 42)
  SELECT id FROM users WHERE spend > 1 AND region;
                                           ^^^^^^

SELECT id FROM users WHERE views > 1;
----
error: 'views' is a window, not a column: read it with window_count(views, '1d'), window_sum, window_avg, window_min, window_max or window_stddev (line 1, column 28)
  SELECT id FROM users WHERE views > 1;
                             ^^^^^

SELECT id FROM users WHERE adults;
----
error: 'adults' is a segment, not a column: test membership with IN SEGMENT adults (line 1, column 28)
  SELECT id FROM users WHERE adults;
                             ^^^^^^

SELECT id FROM users WHERE IN SEGMENT adultz;
----
error: unknown segment 'adultz' (did you mean 'adults'?) (line 1, column 39)
  SELECT id FROM users WHERE IN SEGMENT adultz;
                                        ^^^^^^

SELECT window_sum(view, '1d') FROM users;
----
error: unknown window 'view' (did you mean 'views'?) (line 1, column 19)
  SELECT window_sum(view, '1d') FROM users;
                    ^^^^

SELECT window_sum(views, 1) FROM users;
----
error: expected a duration such as '7d' (line 1, column 26)
  SELECT window_sum(views, 1) FROM users;
                           ^

SELECT window_sum(views) FROM users;
----
error: window_sum takes 2 arguments: window_sum(window, duration) (line 1, column 8)
  SELECT window_sum(views) FROM users;
         ^^^^^^^^^^^^^^^^

SELECT zscore(views, '1d', '2x') FROM users;
----
error: duration '2x' has unknown unit 'x' (use ms, s, m, h, d or w) (line 1, column 28)
  SELECT zscore(views, '1d', '2x') FROM users;
                             ^^^^

SELECT frobnicate(age) FROM users;
----
error: unknown function 'frobnicate' (line 1, column 8)
  SELECT frobnicate(age) FROM users;
         ^^^^^^^^^^

SELECT id FROM users WHERE count(*) > 1;
----
error: aggregates are not allowed in WHERE (line 1, column 28)
  SELECT id FROM users WHERE count(*) > 1;
                             ^^^^^^^^^^^^

SELECT id, count(*) FROM users;
----
error: column 'id' must appear in GROUP BY or inside an aggregate such as count(), sum() or avg() (line 1, column 8)
  SELECT id, count(*) FROM users;
         ^^

SELECT id FROM users ORDER BY taste;
----
error: cannot ORDER BY a vector (line 1, column 31)
  SELECT id FROM users ORDER BY taste;
                                ^^^^^

SELECT id FROM users AS OF 'tomorrow';
----
error: 'tomorrow' is not an RFC 3339 timestamp ('2026-11-01T10:00:00Z') or a date ('2026-11-01'): the 'year' component could not be parsed (line 1, column 28)
  SELECT id FROM users AS OF 'tomorrow';
                             ^^^^^^^^^^

SELECT id FROM users AS OF 99999999999999999;
----
error: timestamp 99999999999999999 is outside years 0000-9999 (-62167219200000..=253402300799999 ms) (line 1, column 28)
  SELECT id FROM users AS OF 99999999999999999;
                             ^^^^^^^^^^^^^^^^^

SELECT id FROM users LIMIT 1.5;
----
error: syntax error: a row count must be a whole number, got 1.5 (line 1, column 28)
  SELECT id FROM users LIMIT 1.5;
                             ^^^

SELECT id,
  age +
  FROM users;
----
error: syntax error: expected an expression, found 'FROM' (line 3, column 3)
    FROM users;
    ^^^^

SELECT 'unterminated FROM users;
----
error: syntax error: unterminated string (line 1, column 8)
  SELECT 'unterminated FROM users;
         ^^^^^^^^^^^^^^^^^^^^^^^^^

SELECT id FROM users WHERE age > 1 GARBAGE;
----
error: syntax error: expected ';' or the end of the statement (or a clause: WHERE, GROUP, HAVING, ORDER, LIMIT, OFFSET, AS OF), found 'GARBAGE' (line 1, column 36)
  SELECT id FROM users WHERE age > 1 GARBAGE;
                                     ^^^^^^^

SELECT id FROM users; SELECT id FROM users;
----
error: syntax error: expected one statement, found several (line 1, column 23)
  SELECT id FROM users; SELECT id FROM users;
                        ^^^^^^^^^^^^^^^^^^^^

CREATE WINDOW w ON view BUCKET 1h RETAIN '30d';
----
error: syntax error: expected a duration such as '7d', found number 1 (line 1, column 32)
  CREATE WINDOW w ON view BUCKET 1h RETAIN '30d';
                                 ^

# Aggregates take one argument.
SELECT count(id, id) FROM users;
----
error: count takes 1 argument: count(*) or count(expression) (line 1, column 8)
  SELECT count(id, id) FROM users;
         ^^^^^^^^^^^^

SELECT sum(spend, 5) FROM users;
----
error: sum takes 1 argument: sum(expression) (line 1, column 8)
  SELECT sum(spend, 5) FROM users;
         ^^^^^^^^^^^^

SELECT avg(region) FROM users;
----
error: type mismatch in avg(): expected a number, found string (line 1, column 8)
  SELECT avg(region) FROM users;
         ^^^^^^^^^^

SELECT count() FROM users;
----
error: count takes 1 argument: count(*) or count(expression) (line 1, column 8)
  SELECT count() FROM users;
         ^^^^^

# Integer overflow is an error, not a float under an int column.
INSERT INTO purchase (user, ts, amount) VALUES ('u9', 1, 2.0);
----
INSERT 1

SELECT 9223372036854775807 + 1 AS x FROM users;
----
error: integer overflow in column 'x': a value is outside the 64-bit integer range; compute it in floating point (1.0 * …) instead

SELECT 9223372036854775807 + 1 > 0 AS big FROM users;
----
big:bool
true
true

SELECT 4611686018427387904 * 2 AS x, count(*) FROM users GROUP BY x;
----
error: integer overflow in column 'x': a value is outside the 64-bit integer range; compute it in floating point (1.0 * …) instead

# Control characters in user ids are refused.
INSERT INTO purchase (user, ts, amount) VALUES ('tab	here', 1, 2.0);
----
error: row 1 field 'user': user id contains the control character U+0009 at byte 3; nothing was written (line 1, column 49)
  INSERT INTO purchase (user, ts, amount) VALUES ('tab here', 1, 2.0);
                                                  ^^^^^^^^^^

# Every function is in one table, so every one is suggested.
SELECT cosin(taste, 'u1') FROM users;
----
error: unknown function 'cosin' (did you mean 'cosine'?) (line 1, column 8)
  SELECT cosin(taste, 'u1') FROM users;
         ^^^^^

SELECT window_sun(clicks, '1d') FROM users;
----
error: unknown function 'window_sun' (did you mean 'window_sum'?) (line 1, column 8)
  SELECT window_sun(clicks, '1d') FROM users;
         ^^^^^^^^^^

SELECT nearest_clustr(g) FROM users;
----
error: unknown function 'nearest_clustr' (did you mean 'nearest_cluster'?) (line 1, column 8)
  SELECT nearest_clustr(g) FROM users;
         ^^^^^^^^^^^^^^

SELECT coalesce() FROM users;
----
error: coalesce takes at least 1 argument: coalesce(value, …) (line 1, column 8)
  SELECT coalesce() FROM users;
         ^^^^^^^^

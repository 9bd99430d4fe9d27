# Distinct counts: exact while small (128 values a user), a HyperLogLog after.
CREATE FEATURE items_seen ON view AS COUNT_DISTINCT(item);
----
CREATE FEATURE

CREATE FEATURE views ON view AS COUNT();
----
CREATE FEATURE

INSERT INTO view (user, ts, item) VALUES ('u1', 1, 'a'), ('u1', 2, 'b'), ('u1', 3, 'a'), ('u2', 4, 'a'), ('u1', 5, 7), ('u1', 6, '7'), ('u1', 7, 7.0);
----
INSERT 7

# A view without an item counts as a view, not as an item.
INSERT INTO view (user, ts) VALUES ('u2', 8);
----
INSERT 1

SELECT id, views, items_seen FROM users ORDER BY id;
----
id:string | views:int | items_seen:int
'u1' | 6 | 3
'u2' | 2 | 1

SELECT id FROM users WHERE items_seen >= 3;
----
id:string
'u1'

DESCRIBE items_seen;
----
kind:string | name:string | definition:string
'feature' | 'items_seen' | 'CREATE FEATURE items_seen ON view AS COUNT_DISTINCT(item)'

# Only strings, numbers and booleans are counted.
INSERT INTO view (user, ts, item) VALUES ('u3', 9, [1, 2]);
----
error: row 1 field 'item': a distinct count counts strings, numbers and booleans, not vectors (feature 'items_seen'); nothing was written (line 1, column 52)
  INSERT INTO view (user, ts, item) VALUES ('u3', 9, [1, 2]);
                                                     ^^^^^^

CREATE FEATURE x ON view AS COUNT_DISTINCT(item) HALF_LIFE '1d';
----
error: syntax error: COUNT_DISTINCT does not decay, so takes no HALF_LIFE (line 1, column 60)
  CREATE FEATURE x ON view AS COUNT_DISTINCT(item) HALF_LIFE '1d';
                                                             ^^^^

CREATE FEATURE y ON view AS COUNT_DISTINCT();
----
error: syntax error: expected the event field it reads, found ')' (line 1, column 44)
  CREATE FEATURE y ON view AS COUNT_DISTINCT();
                                             ^

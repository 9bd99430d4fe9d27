# Keyed features: a count or sum kept per value of an event field, for at
# most TOP n keys per user. The clock reads 2026-11-15T00:00:00Z.
CREATE FEATURE cat_views ON view AS COUNT() BY category TOP 3;
----
CREATE FEATURE

CREATE FEATURE cat_spend ON view AS SUM(price) BY category;
----
CREATE FEATURE

CREATE FEATURE cat_affinity ON view AS DECAYED_COUNT() BY category HALF_LIFE '1d' TOP 2;
----
CREATE FEATURE

DESCRIBE cat_affinity;
----
kind:string | name:string | definition:string
'feature' | 'cat_affinity' | 'CREATE FEATURE cat_affinity ON view AS DECAYED_COUNT() BY category HALF_LIFE '1d' TOP 2'

DESCRIBE cat_spend;
----
kind:string | name:string | definition:string
'feature' | 'cat_spend' | 'CREATE FEATURE cat_spend ON view AS SUM(price) BY category TOP 100'

INSERT INTO view (user, ts, category, price) VALUES ('u1', '2026-11-14T00:00:00Z', 'tech', 10.0), ('u1', '2026-11-14T00:00:00Z', 'tech', 5.0), ('u1', '2026-11-13T00:00:00Z', 'home', 2.5), ('u2', '2026-11-15T00:00:00Z', 'art', 1.0);
----
INSERT 4

# A view without a category leaves the keyed features as they were.
INSERT INTO view (user, ts, price) VALUES ('u1', '2026-11-14T00:00:00Z', 100.0);
----
INSERT 1

SELECT id, cat_views, cat_spend FROM users ORDER BY id;
----
id:string | cat_views:map | cat_spend:map
'u1' | {tech: 2.0, home: 1.0} | {tech: 15.0, home: 2.5}
'u2' | {art: 1.0} | {art: 1.0}

SELECT id, cat_views['tech'], cat_spend['home'], cat_affinity['tech'], cat_views['none'] FROM users ORDER BY id;
----
id:string | cat_views['tech']:int | cat_spend['home']:float | cat_affinity['tech']:float | cat_views['none']:int
'u1' | 2 | 2.5 | 1.0 | 0
'u2' | 0 | 0.0 | 0.0 | 0

SELECT id, top_keys(cat_views, 1), top_keys(cat_affinity, 5) FROM users ORDER BY id;
----
id:string | top_keys(cat_views, 1):tags | top_keys(cat_affinity, 5):tags
'u1' | ["tech"] | ["tech", "home"]
'u2' | ["art"] | ["art"]

SELECT id FROM users WHERE cat_views['tech'] >= 2;
----
id:string
'u1'

SELECT id, cat_spend['tech'] AS tech FROM users ORDER BY cat_spend['tech'] DESC;
----
id:string | tech:float
'u1' | 15.0
'u2' | 0.0

CREATE SEGMENT techies AS cat_affinity['tech'] > 0.9;
----
CREATE SEGMENT

SELECT id FROM users WHERE IN SEGMENT techies;
----
id:string
'u1'

# More keys than TOP: the smallest fall out.
INSERT INTO view (user, ts, category, price) VALUES ('u2', 10, 'a', 1.0), ('u2', 11, 'b', 1.0), ('u2', 12, 'b', 1.0), ('u2', 13, 'c', 1.0), ('u2', 14, 'c', 1.0), ('u2', 15, 'c', 1.0);
----
INSERT 6

SELECT id, cat_views FROM users WHERE id = 'u2';
----
id:string | cat_views:map
'u2' | {c: 2.0, b: 1.0}

# Bad input.
CREATE FEATURE k0 ON view AS COUNT() BY category TOP 0;
----
error: syntax error: TOP keeps 1 to 10000 keys per user, not 0 (line 1, column 54)
  CREATE FEATURE k0 ON view AS COUNT() BY category TOP 0;
                                                       ^

CREATE FEATURE k1 ON view AS MAX(price) BY category;
----
error: only COUNT, SUM, DECAYED_COUNT and DECAYED_SUM features are kept per key (BY), not MAX (line 1, column 16)
  CREATE FEATURE k1 ON view AS MAX(price) BY category;
                 ^^

CREATE FEATURE k2 ON view AS COUNT() TOP 5;
----
error: syntax error: TOP bounds a keyed feature's keys: it follows BY field (line 1, column 38)
  CREATE FEATURE k2 ON view AS COUNT() TOP 5;
                                       ^^^

CREATE FEATURE k3 ON view AS COUNT() BY ts;
----
error: field 'ts': 'ts' is an event key, not a field (line 1, column 41)
  CREATE FEATURE k3 ON view AS COUNT() BY ts;
                                          ^^

SELECT cat_views + 1 FROM users;
----
error: type mismatch in arithmetic '+': expected a number, found map (line 1, column 8)
  SELECT cat_views + 1 FROM users;
         ^^^^^^^^^

SELECT views['x'] FROM users;
----
error: unknown column 'views' (line 1, column 8)
  SELECT views['x'] FROM users;
         ^^^^^

SELECT cat_views[1] FROM users;
----
error: type mismatch in a key: expected string, found int (line 1, column 18)
  SELECT cat_views[1] FROM users;
                   ^

SELECT top_keys(cat_views, 0) FROM users;
----
error: top_keys(feature, n) takes a positive whole number of keys (line 1, column 28)
  SELECT top_keys(cat_views, 0) FROM users;
                             ^

INSERT INTO view (user, ts, category) VALUES ('u3', 1, [1, 2]);
----
error: row 1 field 'category': keys are strings, numbers and booleans, not vectors (feature 'cat_views'); nothing was written (line 1, column 56)
  INSERT INTO view (user, ts, category) VALUES ('u3', 1, [1, 2]);
                                                         ^^^^^^

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
error: syntax error: expected an expression, found ')' (line 1, column 44)
  CREATE FEATURE y ON view AS COUNT_DISTINCT();
                                             ^

# First and last times: FIRST_SEEN() and LAST_SEEN() are MIN(ts) and MAX(ts),
# epoch ms; LAST(ts) too. The clock reads 2026-11-15T00:00:00Z.
CREATE FEATURE first_view ON view AS FIRST_SEEN();
----
CREATE FEATURE

CREATE FEATURE last_view ON view AS LAST_SEEN();
----
CREATE FEATURE

CREATE FEATURE last_buy ON purchase AS LAST(ts);
----
CREATE FEATURE

INSERT INTO view (user, ts) VALUES ('r1', '2026-11-01T00:00:00Z'), ('r1', '2026-11-14T00:00:00Z'), ('r2', '2026-10-01T00:00:00Z');
----
INSERT 3

INSERT INTO purchase (user, ts) VALUES ('r1', '2026-11-10T12:00:00Z'), ('r1', '2026-11-03T00:00:00Z');
----
INSERT 2

SELECT id, first_view, last_view, last_buy, now() FROM users WHERE id IN ('r1', 'r2') ORDER BY id;
----
id:string | first_view:int | last_view:int | last_buy:int | now():int
'r1' | 1793491200000 | 1794614400000 | 1794312000000 | 1794700800000
'r2' | 1790812800000 | 1790812800000 | NULL | 1794700800000

# Durations beside numbers are ms: idle for more than 30 days.
SELECT id, (now() - last_view) / 86400000 AS idle_days FROM users WHERE now() - last_view > '30d';
----
id:string | idle_days:float
'r2' | 45.0

CREATE SEGMENT lapsed AS now() - last_view > '7d';
----
CREATE SEGMENT

SELECT id FROM users WHERE IN SEGMENT lapsed ORDER BY id;
----
id:string
'r2'

# As of a past time, now() is that time.
SELECT id FROM users WHERE IN SEGMENT lapsed ORDER BY id AS OF '2026-10-05T00:00:00Z';
----
id:string
(no rows)

DESCRIBE first_view;
----
kind:string | name:string | definition:string
'feature' | 'first_view' | 'CREATE FEATURE first_view ON view AS MIN(ts)'

# The event's time is no field to sum or bucket; a string is no duration.
CREATE FEATURE bad ON view AS SUM(ts);
----
error: 'ts' is an event key, not a field (line 1, column 16)
  CREATE FEATURE bad ON view AS SUM(ts);
                 ^^^

CREATE WINDOW bad ON view OF ts BUCKET '1h' RETAIN '1d';
----
error: 'ts' is an event key, not a field (line 1, column 15)
  CREATE WINDOW bad ON view OF ts BUCKET '1h' RETAIN '1d';
                ^^^

SELECT id FROM users WHERE now() - last_view > 'soon';
----
error: type mismatch in comparison '>': expected int, found string (line 1, column 48)
  SELECT id FROM users WHERE now() - last_view > 'soon';
                                                 ^^^^^^

# Filtered items take only the events their filter passes.
CREATE FEATURE tech_views ON view WHERE category = 'tech' AS COUNT();
----
CREATE FEATURE

CREATE FEATURE big_spend ON purchase WHERE amount >= 100 AND NOT (coupon IS NOT NULL) AS SUM(amount);
----
CREATE FEATURE

CREATE WINDOW cheap_buys ON purchase WHERE amount BETWEEN 0 AND 20 BUCKET '1d' RETAIN '30d';
----
CREATE WINDOW

CREATE VECTOR sport_taste ON view WHERE category IN ('sport', 'outdoor') AS EWMA(v) DIM 2 HALF_LIFE '7d';
----
CREATE VECTOR

INSERT INTO view (user, ts, category, v) VALUES ('f1', '2026-11-14T00:00:00Z', 'tech', [1, 0]), ('f1', '2026-11-14T01:00:00Z', 'sport', [0, 1]), ('f1', '2026-11-14T02:00:00Z', 'tech', [1, 1]), ('f1', '2026-11-14T03:00:00Z', NULL, [1, 0]);
----
INSERT 4

INSERT INTO purchase (user, ts, amount, coupon) VALUES ('f1', '2026-11-14T00:00:00Z', 150.0, NULL), ('f1', '2026-11-14T01:00:00Z', 200.0, 'XMAS'), ('f1', '2026-11-14T02:00:00Z', 15.0, NULL), ('f1', '2026-11-14T03:00:00Z', 30.0, NULL);
----
INSERT 4

SELECT id, views, tech_views, big_spend, window_count(cheap_buys, '1d'), sport_taste FROM users WHERE id = 'f1';
----
id:string | views:int | tech_views:int | big_spend:float | window_count(cheap_buys, '1d'):int | sport_taste:vector
'f1' | 4 | 2 | 150.0 | 1 | [0.0, 1.0]

DESCRIBE big_spend;
----
kind:string | name:string | definition:string
'feature' | 'big_spend' | 'CREATE FEATURE big_spend ON purchase WHERE amount >= 100 AND NOT coupon IS NOT NULL AS SUM(amount)'

SHOW WINDOWS;
----
name:string | definition:string
'cheap_buys' | 'CREATE WINDOW cheap_buys ON purchase WHERE amount >= 0 AND amount <= 20 BUCKET '1d' RETAIN '30d''

# A filter compares event fields with constants.
CREATE FEATURE bad ON view WHERE category = other AS COUNT();
----
error: an event filter compares event fields with constants (=, !=, <, <=, >, >=, IN, BETWEEN, IS NULL, AND, OR, NOT) (line 1, column 45)
  CREATE FEATURE bad ON view WHERE category = other AS COUNT();
                                              ^^^^^

CREATE FEATURE bad ON view WHERE price * 2 > 10 AS COUNT();
----
error: an event filter compares event fields with constants (=, !=, <, <=, >, >=, IN, BETWEEN, IS NULL, AND, OR, NOT) (line 1, column 34)
  CREATE FEATURE bad ON view WHERE price * 2 > 10 AS COUNT();
                                   ^^^^^^^^^^^^^^

CREATE FEATURE bad ON view WHERE ts > 5 AS COUNT();
----
error: 'ts' is an event key, not a field (line 1, column 34)
  CREATE FEATURE bad ON view WHERE ts > 5 AS COUNT();
                                   ^^

# One item, several event types.
CREATE FEATURE basket_adds ON purchase, add_to_cart AS COUNT();
----
CREATE FEATURE

CREATE FEATURE cart_value ON purchase, add_to_cart WHERE amount > 0 AS SUM(amount);
----
CREATE FEATURE

INSERT INTO add_to_cart (user, ts, amount) VALUES ('m1', '2026-11-14T00:00:00Z', 10.0), ('m1', '2026-11-14T01:00:00Z', -1.0);
----
INSERT 2

INSERT INTO purchase (user, ts, amount) VALUES ('m1', '2026-11-14T02:00:00Z', 25.0);
----
INSERT 1

SELECT id, basket_adds, cart_value FROM users WHERE id = 'm1';
----
id:string | basket_adds:int | cart_value:float
'm1' | 3 | 35.0

DESCRIBE cart_value;
----
kind:string | name:string | definition:string
'feature' | 'cart_value' | 'CREATE FEATURE cart_value ON purchase, add_to_cart WHERE amount > 0 AS SUM(amount)'

CREATE FEATURE twice ON purchase, purchase AS COUNT();
----
error: event type 'purchase' is named twice (line 1, column 16)
  CREATE FEATURE twice ON purchase, purchase AS COUNT();
                 ^^^^^

CREATE SEGMENT bad ON purchase, view AS basket_adds > 1;
----
error: syntax error: expected AS, found 'ON' (line 1, column 20)
  CREATE SEGMENT bad ON purchase, view AS basket_adds > 1;
                     ^^

# A rate from two event types: clicks over impressions, decayed, with a prior.
# Three impressions and one click: (1 + 1) / (3 + 1 + 20), all at one time.
CREATE FEATURE ctr ON impression, click AS RATE(click) HALF_LIFE '7d' PRIOR (1, 20);
----
CREATE FEATURE

INSERT INTO impression (user, ts) VALUES ('a1', '2026-11-15T00:00:00Z'), ('a1', '2026-11-15T00:00:00Z'), ('a1', '2026-11-15T00:00:00Z'), ('a2', '2026-11-15T00:00:00Z');
----
INSERT 4

INSERT INTO click (user, ts) VALUES ('a1', '2026-11-15T00:00:00Z');
----
INSERT 1

SELECT id, ctr FROM users WHERE id IN ('a1', 'a2') ORDER BY id;
----
id:string | ctr:float
'a1' | 0.08333333333333333
'a2' | 0.045454545454545456

DESCRIBE ctr;
----
kind:string | name:string | definition:string
'feature' | 'ctr' | 'CREATE FEATURE ctr ON impression, click AS RATE(click) HALF_LIFE '1w' PRIOR (1.0, 20.0)'

CREATE FEATURE bad ON click AS RATE(click) HALF_LIFE '7d';
----
error: RATE(click) counts 'click' events as successes of the trials of the other event types it binds: ON <trial type>, click AS RATE(click) (line 1, column 16)
  CREATE FEATURE bad ON click AS RATE(click) HALF_LIFE '7d';
                 ^^^

CREATE FEATURE bad ON impression, view AS RATE(click) HALF_LIFE '7d';
----
error: RATE(click) counts 'click' events as successes of the trials of the other event types it binds: ON <trial type>, click AS RATE(click) (line 1, column 16)
  CREATE FEATURE bad ON impression, view AS RATE(click) HALF_LIFE '7d';
                 ^^^

# Computed arguments: arithmetic over event fields.
CREATE FEATURE revenue ON sale WHERE qty > 0 AS SUM(price * qty);
----
CREATE FEATURE

CREATE FEATURE avg_line ON sale AS DECAYED_AVG(price * qty - discount) HALF_LIFE '7d';
----
CREATE FEATURE

CREATE WINDOW revenue_daily ON sale OF price * qty BUCKET '1d' RETAIN '30d';
----
CREATE WINDOW

INSERT INTO sale (user, ts, price, qty, discount) VALUES ('o1', '2026-11-14T00:00:00Z', 10.0, 3, 5.0), ('o1', '2026-11-14T00:00:00Z', 2.5, 4, 0);
----
INSERT 2

# No qty: the items that read it are left as they were.
INSERT INTO sale (user, ts, price) VALUES ('o1', '2026-11-14T00:00:00Z', 99.0);
----
INSERT 1

SELECT id, revenue, avg_line, window_sum(revenue_daily, '1d') FROM users WHERE id = 'o1';
----
id:string | revenue:float | avg_line:float | window_sum(revenue_daily, '1d'):float
'o1' | 40.0 | 17.5 | 40.0

DESCRIBE revenue;
----
kind:string | name:string | definition:string
'feature' | 'revenue' | 'CREATE FEATURE revenue ON sale WHERE qty > 0 AS SUM(price * qty)'

ALTER FEATURE avg_line SET HALF_LIFE '1d';
----
error: replacing feature 'avg_line' re-derives it from the event history, which this database does not keep; DROP it and CREATE it again to start it empty (line 1, column 15)
  ALTER FEATURE avg_line SET HALF_LIFE '1d';
                ^^^^^^^^

DESCRIBE avg_line;
----
kind:string | name:string | definition:string
'feature' | 'avg_line' | 'CREATE FEATURE avg_line ON sale AS DECAYED_AVG(price * qty - discount) HALF_LIFE '1w''

INSERT INTO sale (user, ts, price, qty) VALUES ('o2', '2026-11-14T00:00:00Z', 'ten', 1);
----
error: row 1 field 'price': expected a number, got string (feature 'revenue'); nothing was written (line 1, column 79)
  INSERT INTO sale (user, ts, price, qty) VALUES ('o2', '2026-11-14T00:00:00Z', 'ten', 1);
                                                                                ^^^^^

CREATE FEATURE bad ON sale AS SUM(price * abs(qty));
----
error: a computed argument is arithmetic (+, -, *, /) over event fields and numbers (line 1, column 43)
  CREATE FEATURE bad ON sale AS SUM(price * abs(qty));
                                            ^^^^^^^

CREATE FEATURE bad ON sale AS BETA(clicked * 2) HALF_LIFE '1d';
----
error: only a feature or window that aggregates a number takes a computed one (line 1, column 16)
  CREATE FEATURE bad ON sale AS BETA(clicked * 2) HALF_LIFE '1d';
                 ^^^

# Inactive users expire: a database setting.
ALTER DATABASE SET USER TTL '180d';
----
ALTER DATABASE

ALTER DATABASE SET USER TTL '0s';
----
ALTER DATABASE

ALTER DATABASE SET USER TTL '-5d';
----
error: syntax error: a user TTL cannot be negative ('-5d') (line 1, column 29)
  ALTER DATABASE SET USER TTL '-5d';
                              ^^^^^

ALTER DATABASE SET USER TTL 'soon';
----
error: syntax error: duration 'soon' has unknown unit 'soon' (use ms, s, m, h, d or w) (line 1, column 29)
  ALTER DATABASE SET USER TTL 'soon';
                              ^^^^^^

# ALTER what an item reads with changes it in place, without the history:
# a prior, a retention. (1 + 1) / (3 + 1 + 4) for a1 now.
ALTER FEATURE ctr SET PRIOR (1, 4);
----
ALTER FEATURE

SELECT id, ctr FROM users WHERE id = 'a1';
----
id:string | ctr:float
'a1' | 0.25

ALTER WINDOW cheap_buys SET RETAIN '90d';
----
ALTER WINDOW

SHOW WINDOWS;
----
name:string | definition:string
'cheap_buys' | 'CREATE WINDOW cheap_buys ON purchase WHERE amount >= 0 AND amount <= 20 BUCKET '1d' RETAIN '90d''
'revenue_daily' | 'CREATE WINDOW revenue_daily ON sale OF price * qty BUCKET '1d' RETAIN '30d''

ALTER WINDOW cheap_buys SET HALF_LIFE '1d';
----
error: window 'cheap_buys' is kept in buckets, which has no half-life (line 1, column 14)
  ALTER WINDOW cheap_buys SET HALF_LIFE '1d';
               ^^^^^^^^^^

ALTER FEATURE items_seen SET PRIOR (1, 1);
----
error: feature 'items_seen' is a COUNT_DISTINCT(), which has no prior (line 1, column 15)
  ALTER FEATURE items_seen SET PRIOR (1, 1);
                ^^^^^^^^^^

ALTER WINDOW cheap_buys SET RETAIN '1m';
----
error: retention must be at least one bucket (line 1, column 14)
  ALTER WINDOW cheap_buys SET RETAIN '1m';
               ^^^^^^^^^^

ALTER VECTOR sport_taste SET LEARNING_RATE 0.1;
----
error: vector 'sport_taste' is an EWMA vector, which has no learning rate (line 1, column 14)
  ALTER VECTOR sport_taste SET LEARNING_RATE 0.1;
               ^^^^^^^^^^^

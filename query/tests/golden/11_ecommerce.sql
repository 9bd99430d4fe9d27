# The e-commerce brief: views with item, category, price and an embedding;
# carts; purchases; ad impressions and clicks. The clock reads
# 2026-11-15T00:00:00Z; the history keeps 30 days.
ALTER DATABASE SET HISTORY '30d';
----
ALTER DATABASE

# Views and purchases are declared; carts, impressions and clicks are not.
CREATE EVENT view (item STRING NOT NULL, category STRING, price FLOAT NOT NULL, item_vec VECTOR(2));
----
CREATE EVENT

CREATE EVENT purchase (item STRING NOT NULL, price FLOAT NOT NULL, qty INT DEFAULT 1);
----
CREATE EVENT

# The statement that used to stop every view being ingested is refused
# where it is wrong.
CREATE FEATURE last_item ON view AS LAST(item);
----
error: field 'item': is STRING in event type 'view', and feature 'last_item' reads a number (INT or FLOAT) (line 1, column 42)
  CREATE FEATURE last_item ON view AS LAST(item);
                                           ^^^^

CREATE FEATURE tech_views ON view WHERE category = 'tech' AS COUNT();
----
CREATE FEATURE

CREATE FEATURE items_viewed ON view AS COUNT_DISTINCT(item);
----
CREATE FEATURE

CREATE FEATURE last_view ON view AS LAST_SEEN();
----
CREATE FEATURE

CREATE FEATURE basket_events ON add_to_cart, purchase AS COUNT();
----
CREATE FEATURE

CREATE FEATURE spend ON purchase AS DECAYED_SUM(price * qty) HALF_LIFE '7d';
----
CREATE FEATURE

CREATE FEATURE ctr ON impression, click AS RATE(click) HALF_LIFE '7d' PRIOR (1, 20);
----
CREATE FEATURE

CREATE WINDOW daily_spend ON purchase OF price * qty BUCKET '1d' RETAIN '30d';
----
CREATE WINDOW

CREATE VECTOR taste ON view WHERE category IS NOT NULL AS EWMA(item_vec) DIM 2 HALF_LIFE '7d';
----
CREATE VECTOR

INSERT INTO view (user, ts, item, category, price, item_vec) VALUES ('ann', '2026-11-14T09:00:00Z', 'laptop', 'tech', 999.0, [1, 0]), ('ann', '2026-11-14T09:05:00Z', 'mouse', 'tech', 19.0, [1, 0]), ('ann', '2026-11-14T09:10:00Z', 'laptop', 'tech', 999.0, [1, 0]), ('bob', '2026-10-01T12:00:00Z', 'tent', 'outdoor', 150.0, [0, 1]), ('bob', '2026-10-02T12:00:00Z', 'boots', NULL, 80.0, [0, 1]);
----
INSERT 5

INSERT INTO add_to_cart (user, ts, item) VALUES ('ann', '2026-11-14T09:12:00Z', 'laptop');
----
INSERT 1

INSERT INTO purchase (user, ts, item, price, qty) VALUES ('ann', '2026-11-14T09:20:00Z', 'laptop', 999.0, 1), ('ann', '2026-11-14T09:21:00Z', 'mouse', 19.0, 2), ('bob', '2026-10-02T13:00:00Z', 'tent', 150.0, 1);
----
INSERT 3

INSERT INTO impression (user, ts) VALUES ('ann', '2026-11-14T08:00:00Z'), ('ann', '2026-11-14T08:01:00Z'), ('bob', '2026-10-01T11:00:00Z');
----
INSERT 3

INSERT INTO click (user, ts) VALUES ('ann', '2026-11-14T08:02:00Z');
----
INSERT 1

SELECT id, tech_views, items_viewed, basket_events, window_sum(daily_spend, '1d') AS spent_today, ctr, taste FROM users ORDER BY id;
----
id:string | tech_views:int | items_viewed:int | basket_events:int | spent_today:float | ctr:float | taste:vector
'ann' | 3 | 2 | 3 | 1037.0 | 0.08465464805811874 | [1.0, 0.0]
'bob' | 0 | 2 | 1 | 0.0 | 0.04759151625590395 | [0.0, 1.0]

# Lapsed customers: no view for 30 days.
CREATE SEGMENT lapsed AS now() - last_view > '30d';
----
CREATE SEGMENT

SELECT id FROM users WHERE IN SEGMENT lapsed;
----
id:string
'bob'

# Ann as of before her purchases: nothing bought yet.
SELECT id, basket_events, spend, window_sum(daily_spend, '1d') FROM users WHERE id = 'ann' AS OF '2026-11-14T09:15:00Z';
----
id:string | basket_events:int | spend:float | window_sum(daily_spend, '1d'):float
'ann' | 1 | 0.0 | 0.0

# A feature added now is computed over what was kept.
CREATE FEATURE laptop_views ON view WHERE item = 'laptop' AS COUNT();
----
CREATE FEATURE

SELECT id, laptop_views FROM users ORDER BY id;
----
id:string | laptop_views:int
'ann' | 2
'bob' | 0

# Interest per category, decayed, computed over the kept history (Bob's
# views are older than it: whether they were folded yet is up to timing).
CREATE FEATURE cat_affinity ON view AS DECAYED_COUNT() BY category HALF_LIFE '14d' TOP 5;
----
CREATE FEATURE

SELECT id, cat_affinity, top_keys(cat_affinity, 1) AS top FROM users WHERE id = 'ann';
----
id:string | cat_affinity:map | top:tags
'ann' | {tech: 2.909089482066809} | ["tech"]

SELECT id FROM users WHERE cat_affinity['tech'] > 1 ORDER BY cat_affinity['tech'] DESC;
----
id:string
'ann'

# A new half-life re-derives it, still kept per category.
ALTER FEATURE cat_affinity SET HALF_LIFE '7d';
----
ALTER FEATURE

SELECT id, cat_affinity FROM users WHERE id = 'ann';
----
id:string | cat_affinity:map
'ann' | {tech: 2.820933927136345}

# A purchase without its qty counts one.
INSERT INTO purchase (user, ts, item, price) VALUES ('bob', '2026-11-14T10:00:00Z', 'stove', 40.0);
----
INSERT 1

SELECT id, spend FROM users WHERE id = 'bob';
----
id:string | spend:float
'bob' | 39.78357382212589

SHOW EVENTS;
----
name:string | declared:bool | items:int | definition:string
'view' | true | 6 | 'CREATE EVENT view (item STRING NOT NULL, category STRING, price FLOAT NOT NULL, item_vec VECTOR(2))'
'purchase' | true | 3 | 'CREATE EVENT purchase (item STRING NOT NULL, price FLOAT NOT NULL, qty INT DEFAULT 1)'
'add_to_cart' | false | 1 | NULL
'click' | false | 1 | NULL
'impression' | false | 1 | NULL

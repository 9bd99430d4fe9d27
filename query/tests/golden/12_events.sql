# Declared event types: typed fields, NOT NULL ones required, DEFAULT filling
# absent ones. Undeclared types keep working as before.
CREATE EVENT view (item STRING, category STRING, price FLOAT NOT NULL, item_vec VECTOR(3), qty INT DEFAULT 1);
----
CREATE EVENT

CREATE EVENT IF NOT EXISTS view (item STRING);
----
CREATE EVENT skipped: event type 'view' is declared

CREATE EVENT view (item STRING);
----
error: event type 'view' already exists (line 1, column 14)
  CREATE EVENT view (item STRING);
               ^^^^

SHOW EVENTS;
----
name:string | declared:bool | items:int | definition:string
'view' | true | 0 | 'CREATE EVENT view (item STRING, category STRING, price FLOAT NOT NULL, item_vec VECTOR(3), qty INT DEFAULT 1)'

DESCRIBE view;
----
kind:string | name:string | definition:string
'event type' | 'view' | 'CREATE EVENT view (item STRING, category STRING, price FLOAT NOT NULL, item_vec VECTOR(3), qty INT DEFAULT 1)'

DESCRIBE EVENT view;
----
kind:string | name:string | definition:string
'event type' | 'view' | 'CREATE EVENT view (item STRING, category STRING, price FLOAT NOT NULL, item_vec VECTOR(3), qty INT DEFAULT 1)'

# Items bound to a declared type are checked as they are created: a mistake
# is an error at the field, and nothing is created.
CREATE FEATURE last_item ON view AS LAST(item);
----
error: field 'item': is STRING in event type 'view', and feature 'last_item' reads a number (INT or FLOAT) (line 1, column 42)
  CREATE FEATURE last_item ON view AS LAST(item);
                                           ^^^^

CREATE FEATURE spend ON view AS SUM(prce);
----
error: field 'prce': event type 'view' declares no such field (feature 'spend' reads it) (line 1, column 37)
  CREATE FEATURE spend ON view AS SUM(prce);
                                      ^^^^

CREATE FEATURE tech_views ON view WHERE categry = 'tech' AS COUNT();
----
error: field 'categry': event type 'view' declares no such field (feature 'tech_views' reads it) (line 1, column 41)
  CREATE FEATURE tech_views ON view WHERE categry = 'tech' AS COUNT();
                                          ^^^^^^^

CREATE FEATURE items ON view AS COUNT_DISTINCT(item_vec);
----
error: field 'item_vec': is VECTOR(3) in event type 'view', and feature 'items' reads a value that is not a vector (line 1, column 48)
  CREATE FEATURE items ON view AS COUNT_DISTINCT(item_vec);
                                                 ^^^^^^^^

CREATE VECTOR taste ON view AS EWMA(item_vec) DIM 4 HALF_LIFE '7d';
----
error: field 'item_vec': is VECTOR(3) in event type 'view', and vector 'taste' reads VECTOR(4) (line 1, column 37)
  CREATE VECTOR taste ON view AS EWMA(item_vec) DIM 4 HALF_LIFE '7d';
                                      ^^^^^^^^

CREATE FEATURE cat_views ON view AS COUNT() BY item_vec;
----
error: field 'item_vec': is VECTOR(3) in event type 'view', and feature 'cat_views' reads a value that is not a vector (line 1, column 48)
  CREATE FEATURE cat_views ON view AS COUNT() BY item_vec;
                                                 ^^^^^^^^

CREATE ATTRIBUTE item INT ON view;
----
error: field 'item': is STRING in event type 'view', and attribute 'item' reads a value of the attribute's type, INT (line 1, column 18)
  CREATE ATTRIBUTE item INT ON view;
                   ^^^^

SHOW FEATURES;
----
name:string | definition:string
(no rows)

CREATE FEATURE spend ON view AS SUM(price * qty);
----
CREATE FEATURE

CREATE FEATURE tech_views ON view WHERE category = 'tech' AS COUNT();
----
CREATE FEATURE

CREATE VECTOR taste ON view AS EWMA(item_vec) DIM 3 HALF_LIFE '7d';
----
CREATE VECTOR

# An event of a declared type is checked against its declaration; the batch
# stays atomic.
INSERT INTO view (user, ts, price) VALUES ('u1', 1, 10.0), ('u2', 2, 'cheap');
----
error: row 2 field 'price': expected FLOAT, got string 'cheap' (declared FLOAT in event type 'view'); nothing was written (line 1, column 70)
  INSERT INTO view (user, ts, price) VALUES ('u1', 1, 10.0), ('u2', 2, 'cheap');
                                                                       ^^^^^^^

INSERT INTO view (user, ts, item) VALUES ('u1', 1, 'a');
----
error: row 1 field 'price': missing, and event type 'view' declares it NOT NULL; nothing was written (line 1, column 43)
  INSERT INTO view (user, ts, item) VALUES ('u1', 1, 'a');
                                            ^^^^^^^^^^^^

INSERT INTO view (user, ts, price, colour) VALUES ('u1', 1, 2.0, 'red');
----
error: row 1 field 'colour': event type 'view' declares no such field (ALTER EVENT view ADD FIELD colour <type> declares it); nothing was written (line 1, column 66)
  INSERT INTO view (user, ts, price, colour) VALUES ('u1', 1, 2.0, 'red');
                                                                   ^^^^^

INSERT INTO view (user, ts, price, qty) VALUES ('u1', 1, 2.0, 1.5);
----
error: row 1 field 'qty': expected INT, got float 1.5 (declared INT in event type 'view'); nothing was written (line 1, column 63)
  INSERT INTO view (user, ts, price, qty) VALUES ('u1', 1, 2.0, 1.5);
                                                                ^^^

SELECT count(*) FROM users;
----
count(*):int
0

# qty defaults to 1 when absent.
INSERT INTO view (user, ts, price, category) VALUES ('u1', 1, 10.0, 'tech'), ('u1', 2, 5.0, 'home'), ('u2', 3, 4.0, 'tech');
----
INSERT 3

INSERT INTO view (user, ts, price, qty) VALUES ('u2', 4, 1.5, 4);
----
INSERT 1

SELECT id, spend, tech_views FROM users ORDER BY id;
----
id:string | spend:float | tech_views:int
'u1' | 15.0 | 1
'u2' | 10.0 | 1

# A field added later is accepted from then on.
INSERT INTO view (user, ts, price, coupon) VALUES ('u1', 5, 1.0, 'X');
----
error: row 1 field 'coupon': event type 'view' declares no such field (ALTER EVENT view ADD FIELD coupon <type> declares it); nothing was written (line 1, column 66)
  INSERT INTO view (user, ts, price, coupon) VALUES ('u1', 5, 1.0, 'X');
                                                                   ^^^

ALTER EVENT view ADD FIELD coupon STRING;
----
ALTER EVENT

ALTER EVENT view ADD FIELD coupon STRING;
----
error: field 'coupon': event type 'view' declares it already (line 1, column 28)
  ALTER EVENT view ADD FIELD coupon STRING;
                             ^^^^^^

ALTER EVENT view ADD FIELD bad INT DEFAULT 'x';
----
error: field 'bad': DEFAULT of event type 'view': expected INT, got string 'x' (line 1, column 28)
  ALTER EVENT view ADD FIELD bad INT DEFAULT 'x';
                             ^^^

ALTER EVENT click ADD FIELD x INT;
----
error: unknown event type 'click' (line 1, column 13)
  ALTER EVENT click ADD FIELD x INT;
              ^^^^^

INSERT INTO view (user, ts, price, coupon) VALUES ('u1', 5, 1.0, 'X');
----
INSERT 1

# A declared type with nothing bound to it is accepted.
CREATE EVENT click (ad STRING NOT NULL);
----
CREATE EVENT

INSERT INTO click (user, ts, ad) VALUES ('u3', 6, 'ad1');
----
INSERT 1

SELECT id FROM users ORDER BY id;
----
id:string
'u1'
'u2'
'u3'

# Undeclared types are not checked.
CREATE FEATURE carts ON add_to_cart AS SUM(anything);
----
CREATE FEATURE

SHOW EVENTS;
----
name:string | declared:bool | items:int | definition:string
'view' | true | 3 | 'CREATE EVENT view (item STRING, category STRING, price FLOAT NOT NULL, item_vec VECTOR(3), qty INT DEFAULT 1, coupon STRING)'
'click' | true | 0 | 'CREATE EVENT click (ad STRING NOT NULL)'
'add_to_cart' | false | 1 | NULL

# A declaration must fit the items already bound to the type.
CREATE EVENT add_to_cart (anything STRING);
----
error: field 'anything': is STRING in event type 'add_to_cart', and feature 'carts' reads a number (INT or FLOAT) (line 1, column 27)
  CREATE EVENT add_to_cart (anything STRING);
                            ^^^^^^^^

DROP EVENT click;
----
DROP EVENT

DROP EVENT click;
----
error: unknown event type 'click' (line 1, column 12)
  DROP EVENT click;
             ^^^^^

DROP EVENT IF EXISTS click;
----
DROP EVENT skipped: no event type 'click' is declared

INSERT INTO click (user, ts, ad) VALUES ('u3', 7, 'ad1');
----
error: no attribute, feature, window or vector is bound to event type 'click' (line 1, column 13)
  INSERT INTO click (user, ts, ad) VALUES ('u3', 7, 'ad1');
              ^^^^^

# Bad declarations.
CREATE EVENT e (ts INT);
----
error: field 'ts': 'ts' is an event key, not a field (line 1, column 17)
  CREATE EVENT e (ts INT);
                  ^^

CREATE EVENT e (a INT, a STRING);
----
error: field 'a': event type 'e' declares it already (line 1, column 17)
  CREATE EVENT e (a INT, a STRING);
                  ^

CREATE EVENT e (v VECTOR(2) DEFAULT 1);
----
error: field 'v': a VECTOR field takes no DEFAULT (line 1, column 17)
  CREATE EVENT e (v VECTOR(2) DEFAULT 1);
                  ^

CREATE EVENT e (n INT DEFAULT 1.5);
----
error: field 'n': DEFAULT of event type 'e': expected INT, got float 1.5 (line 1, column 17)
  CREATE EVENT e (n INT DEFAULT 1.5);
                  ^

CREATE EVENT e (a BLOB);
----
error: syntax error: expected a type: INT, FLOAT, STRING, BOOL, TAGS or VECTOR(n), found 'BLOB' (line 1, column 19)
  CREATE EVENT e (a BLOB);
                    ^^^^

SHOW EVENTS;
----
name:string | declared:bool | items:int | definition:string
'view' | true | 3 | 'CREATE EVENT view (item STRING, category STRING, price FLOAT NOT NULL, item_vec VECTOR(3), qty INT DEFAULT 1, coupon STRING)'
'add_to_cart' | false | 1 | NULL

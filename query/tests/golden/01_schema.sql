# Every CREATE form of the contract, listed back by SHOW.
CREATE ATTRIBUTE age INT;
----
CREATE ATTRIBUTE

CREATE ATTRIBUTE region STRING ON signup;
----
CREATE ATTRIBUTE

CREATE ATTRIBUTE score FLOAT;
----
CREATE ATTRIBUTE

CREATE ATTRIBUTE vip BOOL;
----
CREATE ATTRIBUTE

CREATE ATTRIBUTE interests TAGS;
----
CREATE ATTRIBUTE

CREATE FEATURE purchases ON purchase AS COUNT();
----
CREATE FEATURE

CREATE FEATURE revenue ON purchase AS SUM(amount);
----
CREATE FEATURE

CREATE FEATURE smallest ON purchase AS MIN(amount);
----
CREATE FEATURE

CREATE FEATURE largest ON purchase AS MAX(amount);
----
CREATE FEATURE

CREATE FEATURE latest ON purchase AS LAST(amount);
----
CREATE FEATURE

CREATE FEATURE visits ON view AS DECAYED_COUNT() HALF_LIFE '7d';
----
CREATE FEATURE

CREATE FEATURE spend_7d ON purchase AS DECAYED_SUM(amount) HALF_LIFE '7d';
----
CREATE FEATURE

CREATE FEATURE basket ON purchase AS DECAYED_AVG(amount) HALF_LIFE '30d';
----
CREATE FEATURE

CREATE FEATURE ctr ON impression AS BETA(clicked) HALF_LIFE '14d' PRIOR (1, 20);
----
CREATE FEATURE

CREATE WINDOW views ON view BUCKET '1h' RETAIN '30d';
----
CREATE WINDOW

CREATE WINDOW spend ON purchase OF amount BUCKET '1d' RETAIN '365d';
----
CREATE WINDOW

CREATE VECTOR taste ON view AS EWMA(item_vec) DIM 8 HALF_LIFE '14d';
----
CREATE VECTOR

CREATE VECTOR pref ON impression AS SGD(item_vec, clicked) DIM 8 LEARNING_RATE 0.05 L2 0.0001;
----
CREATE VECTOR

CREATE SEGMENT big_spenders AS spend_7d > 100 AND purchases >= 2;
----
CREATE SEGMENT

SHOW ATTRIBUTES;
----
name:string | definition:string
'age' | 'CREATE ATTRIBUTE age INT'
'region' | 'CREATE ATTRIBUTE region STRING ON signup'
'score' | 'CREATE ATTRIBUTE score FLOAT'
'vip' | 'CREATE ATTRIBUTE vip BOOL'
'interests' | 'CREATE ATTRIBUTE interests TAGS'

SHOW FEATURES;
----
name:string | definition:string
'purchases' | 'CREATE FEATURE purchases ON purchase AS COUNT()'
'revenue' | 'CREATE FEATURE revenue ON purchase AS SUM(amount)'
'smallest' | 'CREATE FEATURE smallest ON purchase AS MIN(amount)'
'largest' | 'CREATE FEATURE largest ON purchase AS MAX(amount)'
'latest' | 'CREATE FEATURE latest ON purchase AS LAST(amount)'
'visits' | 'CREATE FEATURE visits ON view AS DECAYED_COUNT() HALF_LIFE '1w''
'spend_7d' | 'CREATE FEATURE spend_7d ON purchase AS DECAYED_SUM(amount) HALF_LIFE '1w''
'basket' | 'CREATE FEATURE basket ON purchase AS DECAYED_AVG(amount) HALF_LIFE '30d''
'ctr' | 'CREATE FEATURE ctr ON impression AS BETA(clicked) HALF_LIFE '2w' PRIOR (1.0, 20.0)'

SHOW WINDOWS;
----
name:string | definition:string
'views' | 'CREATE WINDOW views ON view BUCKET '1h' RETAIN '30d''
'spend' | 'CREATE WINDOW spend ON purchase OF amount BUCKET '1d' RETAIN '365d''

SHOW VECTORS;
----
name:string | definition:string
'taste' | 'CREATE VECTOR taste ON view AS EWMA(item_vec) DIM 8 HALF_LIFE '2w''
'pref' | 'CREATE VECTOR pref ON impression AS SGD(item_vec, clicked) DIM 8 LEARNING_RATE 0.05 L2 0.0001'

SHOW SEGMENTS;
----
name:string | definition:string
'big_spenders' | 'CREATE SEGMENT big_spenders AS spend_7d > 100 AND purchases >= 2'

DESCRIBE ctr;
----
kind:string | name:string | definition:string
'feature' | 'ctr' | 'CREATE FEATURE ctr ON impression AS BETA(clicked) HALF_LIFE '2w' PRIOR (1.0, 20.0)'

describe spend_7dd;
----
error: unknown item 'spend_7dd' (did you mean 'spend_7d'?) (line 1, column 10)
  describe spend_7dd;
           ^^^^^^^^^

# Keywords are case-insensitive.
create feature Clicks on click as count();
----
CREATE FEATURE

# Errors.
CREATE FEATURE purchases ON view AS COUNT();
----
error: feature 'purchases' already exists (line 1, column 16)
  CREATE FEATURE purchases ON view AS COUNT();
                 ^^^^^^^^^

CREATE WINDOW age ON view BUCKET '1h' RETAIN '1d';
----
error: attribute 'age' already exists (line 1, column 15)
  CREATE WINDOW age ON view BUCKET '1h' RETAIN '1d';
                ^^^

CREATE FEATURE f ON purchase AS DECAYED_SUM(amount);
----
error: syntax error: DECAYED_SUM needs a HALF_LIFE (line 1, column 33)
  CREATE FEATURE f ON purchase AS DECAYED_SUM(amount);
                                  ^^^^^^^^^^^

CREATE FEATURE f ON purchase AS SUM() ;
----
error: syntax error: expected an expression, found ')' (line 1, column 37)
  CREATE FEATURE f ON purchase AS SUM() ;
                                      ^

CREATE FEATURE f ON purchase AS MEDIAN(amount);
----
error: syntax error: expected COUNT, SUM, MIN, MAX, LAST, DECAYED_COUNT, DECAYED_SUM, DECAYED_AVG, BETA, RATE, COUNT_DISTINCT, FIRST_SEEN or LAST_SEEN, found 'MEDIAN' (line 1, column 33)
  CREATE FEATURE f ON purchase AS MEDIAN(amount);
                                  ^^^^^^

CREATE WINDOW w ON view BUCKET '1y' RETAIN '30d';
----
error: syntax error: duration '1y' has unknown unit 'y' (use ms, s, m, h, d or w) (line 1, column 32)
  CREATE WINDOW w ON view BUCKET '1y' RETAIN '30d';
                                 ^^^^

CREATE VECTOR v ON view AS EWMA(item_vec) HALF_LIFE '1d';
----
error: syntax error: a vector needs DIM n (line 1, column 28)
  CREATE VECTOR v ON view AS EWMA(item_vec) HALF_LIFE '1d';
                             ^^^^

CREATE VECTOR v ON view AS SGD(item_vec, clicked) DIM 8 LEARNING_RATE 0;
----
error: learning rate must be a positive finite number, got 0 (line 1, column 15)
  CREATE VECTOR v ON view AS SGD(item_vec, clicked) DIM 8 LEARNING_RATE 0;
                ^

CREATE ATTRIBUTE user STRING;
----
error: 'user' is a reserved name (line 1, column 18)
  CREATE ATTRIBUTE user STRING;
                   ^^^^

CREATE ATTRIBUTE x DECIMAL;
----
error: syntax error: expected a type: INT, FLOAT, STRING, BOOL or TAGS, found 'DECIMAL' (line 1, column 20)
  CREATE ATTRIBUTE x DECIMAL;
                     ^^^^^^^

CREATE SEGMENT s AS spend_7 > 1;
----
error: unknown column 'spend_7' (did you mean 'spend_7d'?) (line 1, column 21)
  CREATE SEGMENT s AS spend_7 > 1;
                      ^^^^^^^

CREATE SEGMENT s AS region > 1;
----
error: type mismatch in comparison '>': expected string, found int (line 1, column 30)
  CREATE SEGMENT s AS region > 1;
                               ^

CREATE SEGMENT s AS revenue + 1;
----
error: type mismatch in segment predicate: expected bool, found float (line 1, column 21)
  CREATE SEGMENT s AS revenue + 1;
                      ^^^^^^^^^^^

DROP FEATURE purchases;
----
error: segment 'big_spenders' uses feature 'purchases'; drop the segment first (line 1, column 14)
  DROP FEATURE purchases;
               ^^^^^^^^^

DROP FEATURE purchase;
----
error: unknown feature 'purchase' (did you mean 'purchases'?) (line 1, column 14)
  DROP FEATURE purchase;
               ^^^^^^^^

DROP WINDOW spend_7d;
----
error: unknown window 'spend_7d' (line 1, column 13)
  DROP WINDOW spend_7d;
              ^^^^^^^^

DROP SEGMENT big_spenders;
----
DROP SEGMENT

DROP FEATURE purchases;
----
DROP FEATURE

SHOW FEATURES;
----
name:string | definition:string
'revenue' | 'CREATE FEATURE revenue ON purchase AS SUM(amount)'
'smallest' | 'CREATE FEATURE smallest ON purchase AS MIN(amount)'
'largest' | 'CREATE FEATURE largest ON purchase AS MAX(amount)'
'latest' | 'CREATE FEATURE latest ON purchase AS LAST(amount)'
'visits' | 'CREATE FEATURE visits ON view AS DECAYED_COUNT() HALF_LIFE '1w''
'spend_7d' | 'CREATE FEATURE spend_7d ON purchase AS DECAYED_SUM(amount) HALF_LIFE '1w''
'basket' | 'CREATE FEATURE basket ON purchase AS DECAYED_AVG(amount) HALF_LIFE '30d''
'ctr' | 'CREATE FEATURE ctr ON impression AS BETA(clicked) HALF_LIFE '2w' PRIOR (1.0, 20.0)'
'Clicks' | 'CREATE FEATURE Clicks ON click AS COUNT()'

SHOW THINGS;
----
error: syntax error: expected ATTRIBUTES, FEATURES, WINDOWS, VECTORS, SEGMENTS, EVENTS, INDEXES or HISTORY, found 'THINGS' (line 1, column 6)
  SHOW THINGS;
       ^^^^^^

# IF NOT EXISTS on every CREATE, IF EXISTS on every DROP: scripts that can run twice.
CREATE FEATURE IF NOT EXISTS spend ON purchase AS SUM(amount);
----
CREATE FEATURE

CREATE FEATURE IF NOT EXISTS spend ON purchase AS COUNT();
----
CREATE FEATURE skipped: feature 'spend' exists

DESCRIBE spend;
----
kind:string | name:string | definition:string
'feature' | 'spend' | 'CREATE FEATURE spend ON purchase AS SUM(amount)'

CREATE ATTRIBUTE IF NOT EXISTS region STRING ON signup;
----
CREATE ATTRIBUTE

CREATE WINDOW IF NOT EXISTS views ON view BUCKET '1h' RETAIN '30d';
----
CREATE WINDOW

CREATE VECTOR IF NOT EXISTS taste ON view AS EWMA(v) DIM 2 HALF_LIFE '7d';
----
CREATE VECTOR

CREATE SEGMENT IF NOT EXISTS big AS spend > 100;
----
CREATE SEGMENT

# A name taken by another kind is skipped too, saying so.
CREATE SEGMENT IF NOT EXISTS spend AS spend > 1;
----
CREATE SEGMENT skipped: feature 'spend' exists

CREATE SEGMENT IF NOT EXISTS big AS spend > 1;
----
CREATE SEGMENT skipped: segment 'big' exists

DESCRIBE big;
----
kind:string | name:string | definition:string
'segment' | 'big' | 'CREATE SEGMENT big AS spend > 100'

DROP SEGMENT IF EXISTS big;
----
DROP SEGMENT

DROP SEGMENT IF EXISTS big;
----
DROP SEGMENT skipped: no segment 'big'

DROP SEGMENT big;
----
error: unknown segment 'big' (line 1, column 14)
  DROP SEGMENT big;
               ^^^

# IF EXISTS skips only what is not there: a feature is no window.
DROP WINDOW IF EXISTS spend;
----
DROP WINDOW skipped: no window 'spend'

DROP FEATURE IF EXISTS spend;
----
DROP FEATURE

SHOW FEATURES;
----
name:string | definition:string
(no rows)

DROP SEGMENTS IF EXISTS nosuch;
----
DROP SEGMENTS skipped: no segment group 'nosuch'

create feature if not exists spend on purchase as count();
----
CREATE FEATURE

# The clause comes after the kind, and not with OR REPLACE.
CREATE IF NOT EXISTS FEATURE x ON purchase AS COUNT();
----
error: syntax error: expected ATTRIBUTE, FEATURE, WINDOW, VECTOR or SEGMENT, found 'IF' (line 1, column 8)
  CREATE IF NOT EXISTS FEATURE x ON purchase AS COUNT();
         ^^

CREATE OR REPLACE FEATURE IF NOT EXISTS spend ON purchase AS COUNT();
----
error: syntax error: CREATE OR REPLACE replaces an item that exists: IF NOT EXISTS does not go with it (line 1, column 27)
  CREATE OR REPLACE FEATURE IF NOT EXISTS spend ON purchase AS COUNT();
                            ^^

CREATE FEATURE IF EXISTS spend ON purchase AS COUNT();
----
error: syntax error: expected NOT, found 'EXISTS' (line 1, column 19)
  CREATE FEATURE IF EXISTS spend ON purchase AS COUNT();
                    ^^^^^^

DROP FEATURE IF NOT EXISTS spend;
----
error: syntax error: expected EXISTS, found 'NOT' (line 1, column 17)
  DROP FEATURE IF NOT EXISTS spend;
                  ^^^

# `if` still names an item.
CREATE FEATURE if ON purchase AS COUNT();
----
CREATE FEATURE

DROP FEATURE IF EXISTS if;
----
DROP FEATURE

DROP FEATURE IF EXISTS if;
----
DROP FEATURE skipped: no feature 'if'

# The event history's horizon: none in a new database, set by a statement.
SHOW HISTORY;
----
horizon:string | horizon_ms:int | oldest_as_of:string
'0s' | 0 | NULL

ALTER DATABASE SET HISTORY '90d';
----
ALTER DATABASE

SHOW HISTORY;
----
horizon:string | horizon_ms:int | oldest_as_of:string
'90d' | 7776000000 | NULL

alter database set history '36h';
----
ALTER DATABASE

SHOW HISTORY;
----
horizon:string | horizon_ms:int | oldest_as_of:string
'36h' | 129600000 | NULL

# Bad horizons name the value, and change nothing.
ALTER DATABASE SET HISTORY '-1d';
----
error: syntax error: a history horizon cannot be negative ('-1d') (line 1, column 28)
  ALTER DATABASE SET HISTORY '-1d';
                             ^^^^^

ALTER DATABASE SET HISTORY 'soon';
----
error: syntax error: duration 'soon' has unknown unit 'soon' (use ms, s, m, h, d or w) (line 1, column 28)
  ALTER DATABASE SET HISTORY 'soon';
                             ^^^^^^

ALTER DATABASE SET HISTORY '0x';
----
error: syntax error: duration '0x' has unknown unit 'x' (use ms, s, m, h, d or w) (line 1, column 28)
  ALTER DATABASE SET HISTORY '0x';
                             ^^^^

ALTER DATABASE SET HISTORY '200000w';
----
error: a history horizon of 120960000000000 ms is longer than the longest kept, 36500 days (line 1, column 28)
  ALTER DATABASE SET HISTORY '200000w';
                             ^^^^^^^^^

ALTER DATABASE SET HISTORY 90;
----
error: syntax error: expected a horizon such as '30d' ('0s' keeps no history), found number 90 (line 1, column 28)
  ALTER DATABASE SET HISTORY 90;
                             ^^

ALTER DATABASE SET HORIZON '1d';
----
error: syntax error: expected HISTORY, found 'HORIZON' (line 1, column 20)
  ALTER DATABASE SET HORIZON '1d';
                     ^^^^^^^

ALTER TABLE users SET HISTORY '1d';
----
error: syntax error: expected DATABASE, EVENT, FEATURE, WINDOW or VECTOR, found 'TABLE' (line 1, column 7)
  ALTER TABLE users SET HISTORY '1d';
        ^^^^^

SHOW HISTORY;
----
horizon:string | horizon_ms:int | oldest_as_of:string
'36h' | 129600000 | NULL

# Off: '0s' (any unit) keeps nothing.
ALTER DATABASE SET HISTORY '0s';
----
ALTER DATABASE

SHOW HISTORY;
----
horizon:string | horizon_ms:int | oldest_as_of:string
'0s' | 0 | NULL

# History comes back on only while there are no users.
CREATE FEATURE purchases ON purchase AS COUNT();
----
CREATE FEATURE

INSERT INTO purchase (user, ts) VALUES ('u1', '2026-11-01T00:00:00Z');
----
INSERT 1

ALTER DATABASE SET HISTORY '30d';
----
error: history can be turned on only for a database without users: it holds 'u1', whose earlier writes were never kept (line 1, column 28)
  ALTER DATABASE SET HISTORY '30d';
                             ^^^^^

SHOW HISTORY;
----
horizon:string | horizon_ms:int | oldest_as_of:string
'0s' | 0 | NULL

EXPLAIN SHOW HISTORY;
----
plan:string
'Statement: SHOW HISTORY'

# A user's buckets of a window: "30-day purchases by day". The clock reads
# 2026-11-15T00:00:00Z; the history keeps 30 days, so AS OF is exact.
ALTER DATABASE SET HISTORY '30d';
----
ALTER DATABASE

CREATE WINDOW spend ON purchase OF amount BUCKET '1d' RETAIN '90d';
----
CREATE WINDOW

INSERT INTO purchase (user, ts, amount) VALUES ('u1', '2026-11-10T09:00:00Z', 10.0), ('u1', '2026-11-10T18:00:00Z', 5.0), ('u1', '2026-11-12T12:00:00Z', 7.5), ('u2', '2026-11-12T12:00:00Z', 1.0);
----
INSERT 4

BUCKETS spend FOR 'u1' OVER '7d';
----
start:string | count:int | sum:float | min:float | max:float | mean:float
'2026-11-10T00:00:00Z' | 2 | 15.0 | 5.0 | 10.0 | 7.5
'2026-11-12T00:00:00Z' | 1 | 7.5 | 7.5 | 7.5 | 7.5

BUCKETS spend FOR 'u1' OVER '5d' FILL ZEROS;
----
start:string | count:int | sum:float | min:float | max:float | mean:float
'2026-11-10T00:00:00Z' | 2 | 15.0 | 5.0 | 10.0 | 7.5
'2026-11-11T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-11-12T00:00:00Z' | 1 | 7.5 | 7.5 | 7.5 | 7.5
'2026-11-13T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-11-14T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-11-15T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL

BUCKETS spend FOR 'u1' OVER '7d' AS OF '2026-11-11';
----
start:string | count:int | sum:float | min:float | max:float | mean:float
'2026-11-10T00:00:00Z' | 2 | 15.0 | 5.0 | 10.0 | 7.5

BUCKETS spend FOR 'nobody' OVER '7d';
----
start:string | count:int | sum:float | min:float | max:float | mean:float
(no rows)

BUCKETS spnd FOR 'u1' OVER '7d';
----
error: unknown window 'spnd' (did you mean 'spend'?) (line 1, column 9)
  BUCKETS spnd FOR 'u1' OVER '7d';
          ^^^^

BUCKETS spend FOR u1 OVER '7d';
----
error: BUCKETS … FOR takes a user id, a string ('u1') (line 1, column 19)
  BUCKETS spend FOR u1 OVER '7d';
                    ^^

# Filled back to the retention (90 days) only: older buckets are not
# known to be empty.
BUCKETS spend FOR 'u2' OVER '1000w' FILL ZEROS AS OF '2026-11-13';
----
start:string | count:int | sum:float | min:float | max:float | mean:float
'2026-08-17T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-08-18T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-08-19T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-08-20T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-08-21T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-08-22T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-08-23T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-08-24T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-08-25T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-08-26T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-08-27T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-08-28T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-08-29T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-08-30T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-08-31T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-09-01T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-09-02T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-09-03T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-09-04T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-09-05T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-09-06T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-09-07T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-09-08T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-09-09T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-09-10T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-09-11T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-09-12T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-09-13T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-09-14T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-09-15T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-09-16T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-09-17T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-09-18T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-09-19T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-09-20T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-09-21T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-09-22T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-09-23T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-09-24T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-09-25T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-09-26T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-09-27T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-09-28T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-09-29T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-09-30T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-10-01T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-10-02T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-10-03T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-10-04T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-10-05T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-10-06T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-10-07T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-10-08T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-10-09T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-10-10T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-10-11T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-10-12T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-10-13T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-10-14T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-10-15T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-10-16T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-10-17T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-10-18T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-10-19T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-10-20T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-10-21T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-10-22T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-10-23T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-10-24T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-10-25T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-10-26T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-10-27T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-10-28T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-10-29T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-10-30T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-10-31T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-11-01T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-11-02T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-11-03T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-11-04T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-11-05T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-11-06T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-11-07T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-11-08T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-11-09T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-11-10T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-11-11T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL
'2026-11-12T00:00:00Z' | 1 | 1.0 | 1.0 | 1.0 | 1.0
'2026-11-13T00:00:00Z' | 0 | 0.0 | NULL | NULL | NULL

-- Counters of events per key over a sliding window that every node of the platform shares
-- (issue 17): the submission rate per person or application, the unknown recipients per
-- peer and per client address. One row per key and bucket (a twelfth of the window); a
-- key's count is the sum of its buckets inside the window. Written by core/policy/window-counts.ts.
CREATE TABLE policy_window_counts (
  scope  text    NOT NULL,
  key    text    NOT NULL,
  bucket bigint  NOT NULL,
  n      integer NOT NULL,
  PRIMARY KEY (scope, key, bucket)
);

-- Message bodies in the spool and the outbound queue are stored out of line but not
-- compressed (STORAGE EXTERNAL). They live there for seconds to days and are dropped once
-- delivered; attachments are base64 of already compressed files (PDF, zip, JPEG). Trying to
-- compress each body before the 250 cost a third of the INSERT's CPU (10 KB bodies, PGlite:
-- ~0.52 → ~0.35 ms per row) for disk space given back minutes later.
ALTER TABLE smtp_spool ALTER COLUMN body SET STORAGE EXTERNAL;
ALTER TABLE smtp_outbound ALTER COLUMN body SET STORAGE EXTERNAL;

-- Mail routing in the LDAP directory (annuaire/ldap, ou=routage): one row per local mailbox,
-- whatever its status and liste rouge flag, so the SMTP fronts can tell an active box
-- (deliver), a closed one (550 "closed") and an unknown address (550 "no such mailbox")
-- with one lookup. Readable by the platform only (slapd ACL). Numbered after the tables it
-- reads (bal_mailboxes, 0140).
CREATE VIEW annuaire_ldap_routage AS
SELECT lower(b.address) AS key, b.address, b.type AS bal_type, b.status
FROM bal_mailboxes b;

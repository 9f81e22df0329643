import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runMss } from '../helpers/mss.js';

// `mss tls-audit` for operators: which testssl.sh runs it would make (--dry-run), from the
// configuration. The runs themselves take minutes per listener; the README summarises one.
describe('mss tls-audit', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'mss-tlsaudit-'));
  const env = { MSS_SMTP_MX_PORT: '2525', MSS_SMTP_SUBMISSION_PORT: '0', MSS_SMTP_SUBMISSIONS_PORT: '2465', MSS_IMAP_PORT: '2993', MSS_IMAP_STARTTLS_PORT: '2143', MSS_LDAP_PORT: '2389', MSS_LDAP_LDAPS_PORT: '2636', MSS_ADMIN_PORT: '2443', MSS_WEBMAIL_PORT: '2944', MSS_FHIR_PORT: '2445' };

  it('runs testssl on every TLS listener, STARTTLS ones with -t, trusting the configured bundle', () => {
    const r = runMss(['tls-audit', '--dry-run', '--data-dir', dataDir, '--out', join(dataDir, 'audit')], env);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    const run = (name: string) => lines.find((l) => l.includes(`/audit/${name}.json `)) ?? '';
    expect(lines.map((l) => l.split(' ').at(-1))).toEqual(['127.0.0.1:2525', '127.0.0.1:2465', '127.0.0.1:2143', '127.0.0.1:2993', '127.0.0.1:2389', '127.0.0.1:2636', '127.0.0.1:2443', '127.0.0.1:2944', '127.0.0.1:2445']);
    expect(run('mx')).toMatch(/^testssl --quiet --color 0 .*--add-ca \S+\/pki\/chain\.pem .*-t smtp 127\.0\.0\.1:2525$/);
    expect(run('imap')).toMatch(/ -t imap 127\.0\.0\.1:2143$/);
    expect(run('ldap')).toMatch(/ -t ldap --ssl-native --protocols 127\.0\.0\.1:2389$/);
    expect(run('imaps')).not.toContain(' -t ');
    // A port chosen at start is unknown to the configuration: named, and given with --target.
    expect(r.stderr).toBe('mss: submission listens on a port chosen at start (0 in the configuration): give it with --target submission=host:port\n');
  });

  it('takes --target, --only and --host', () => {
    const r = runMss(['tls-audit', '--dry-run', '--data-dir', dataDir, '--out', join(dataDir, 'audit'), '--only', 'submission,admin', '--target', 'submission=127.0.0.1:30587/smtp', '--host', 'mx.example.fr'], env);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const [admin, submission] = r.stdout.trim().split('\n');
    expect(admin).toMatch(/\/admin\.log mx\.example\.fr:2443$/);
    expect(submission).toMatch(/\/submission\.log -t smtp mx\.example\.fr:30587$/);
    expect(runMss(['tls-audit', '--dry-run', '--data-dir', dataDir, '--target', 'nope'], env)).toMatchObject({ code: 1, stderr: 'mss: --target nope: expected name=host:port or name=host:port/smtp|imap|ldap\n' });
  });
});

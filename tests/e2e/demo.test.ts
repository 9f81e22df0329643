import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startMss } from '../helpers/mss.js';
import { until } from '../helpers/operator.js';
import { call } from '../webmail/stack.js';

// What a newcomer sees on a first `npm start`: demo accounts printed, and a platform that
// already carries mail — read here through the printed webmail API with the printed logins.
const ANY_PORT = { MSS_SMTP_MX_PORT: '0', MSS_SMTP_SUBMISSION_PORT: '0', MSS_SMTP_SUBMISSIONS_PORT: '0', MSS_LDAP_PORT: '0', MSS_LDAP_LDAPS_PORT: '0', MSS_ADMIN_PORT: '0', MSS_IMAP_PORT: '0', MSS_IMAP_STARTTLS_PORT: '0', MSS_WEBMAIL_PORT: '0', MSS_FHIR_PORT: '0', MSS_PKI_KEY_BITS: '2048' };

describe('mss start demo data', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'mss-demo-'));

  it('prints the demo logins, which open boxes already holding mail — the lab result among it, handed to the stand-in DMP by the rule', async () => {
    const p = await startMss(['--data-dir', dataDir, '--http-port', '0'], ANY_PORT);
    try {
      const out = p.stdout();
      const pw = (login: string) => new RegExp(`^  ${login.replace('.', '\\.')}\\s+(\\S+)\\s`, 'm').exec(out)?.[1];
      const logins = { jeanne: pw('jeanne.martin')!, marie: pw('marie.durand')!, paul: pw('paul.bernard')! };
      expect(Object.values(logins).every((x) => /^[A-Za-z0-9]{16}$/.test(x)), out).toBe(true);
      const file = join(dataDir, 'demo-logins.txt');
      expect(readFileSync(file, 'utf8')).toContain(logins.jeanne);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const webmail = /webmail API\s+(https:\/\/\S+)\/api\/v1/.exec(out)![1];
      const standin = /stand-in DMP\s+(http:\/\/\S+)\/dmp\/iti41/.exec(out)![1];
      const ca = readFileSync(join(dataDir, 'pki', 'ca.pem'), 'utf8');
      const api = (method: string, path: string, o: Parameters<typeof call>[4] = {}) => call(webmail, ca, method, path, o);
      const login = async (l: string, password: string) => (await api('POST', '/api/v1/login', { json: { login: l, password } })).json().token as string;

      const jeanne = await login('jeanne.martin', logins.jeanne);
      const boxes = (await api('GET', '/api/v1/bals', { token: jeanne })).json();
      expect(JSON.stringify(boxes)).toContain('secretariat.cardio@mssante.localhost');
      const inbox = (await api('GET', '/api/v1/bals/jeanne.martin%40mssante.localhost/folders/INBOX/messages', { token: jeanne })).json();
      const subjects = inbox.messages.map((m: { subject: string }) => m.subject);
      expect(subjects).toEqual(expect.arrayContaining(['Bienvenue sur votre messagerie MSSanté', expect.stringMatching(/^XDM\/1\.0\/DDM\+/)]));
      const result = inbox.messages.find((m: { subject: string }) => m.subject.startsWith('XDM/'));
      const read = (await api('GET', `/api/v1/bals/jeanne.martin%40mssante.localhost/messages/INBOX/${result.uid}`, { token: jeanne })).json();
      expect(read.documents[0].submission.documents[0].patientId.id).toBe('279035121518989');

      const marie = await login('marie.durand', logins.marie);
      const org = (await api('GET', '/api/v1/bals/secretariat.cardio%40mssante.localhost/folders/INBOX/messages', { token: marie })).json();
      expect(org.messages.map((m: { subject: string }) => m.subject)).toEqual(expect.arrayContaining(['Demande de rendez-vous — M. Dupont']));
      const paul = await login('paul.bernard', logins.paul);
      expect((await api('GET', '/api/v1/bals/secretariat.cardio%40mssante.localhost/folders', { token: paul })).status).toBe(403);

      // The colleagues of the small national annuaire are found in the address book.
      const found = (await api('GET', '/api/v1/annuaire?q=lef%C3%A8vre', { token: jeanne })).json();
      expect(JSON.stringify(found)).toContain('claire.lefevre@chu-exemple.mssante.fr');

      // The secretariat's DMP rule hands the lab result to the stand-in DMP on its own.
      await until(async () => ((await (await fetch(`${standin}/dmp/submissions`)).json()) as unknown[]).length > 0);
    } finally {
      p.child.kill('SIGTERM');
      expect(await p.exited).toBe(0);
    }
    // A second start finds accounts and creates nothing more.
    const again = await startMss(['--data-dir', dataDir, '--http-port', '0'], ANY_PORT);
    again.child.kill('SIGTERM');
    expect(await again.exited).toBe(0);
    expect(again.stdout()).not.toContain('Demo data');
  });
});

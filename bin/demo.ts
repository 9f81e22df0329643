// Demo data for a first `mss start`: enough for a newcomer to log in with Thunderbird or
// the webmail API and see every kind of mailbox at work. Everything goes through the same
// paths a real operator uses — the annuaire import for the national directory, annuaire/bal
// for accounts and boxes, the platform's own submission server (with passwords and the
// lab's application certificate) for the messages — so the demo is also a smoke test.
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { addMember, createBal, createPerson, registerAppCertificate } from '../annuaire/bal/index.js';
import { operatorBalContext } from '../annuaire/admin/wiring.js';
import { importFiles } from '../annuaire/import/importer.js';
import { RejectReport } from '../annuaire/import/report.js';
import { generatePassword } from '../annuaire/bal/credentials.js';
import { DEV_RPPS, DEV_STRUCTURE_ID } from '../certs/pki.js';
import { nodeTlsPolicy } from '../certs/tls-policy.js';
import type { Logger } from '../core/logger.js';
import { demoResultMessage } from '../dmp/demo.js';
import { setDmpRule } from '../dmp/index.js';
import type { Platform } from './platform.js';

export interface DemoLogin {
  who: string;
  login: string;
  password: string;
  boxes: string[];
}

export interface Demo {
  logins: DemoLogin[];
  lab: { address: string; certFile: string; keyFile: string };
  file: string;
}

const COLLEAGUE_RPPS = '10101010101';

/** Seeds the demo when it is enabled and the annuaire has no local account yet; null otherwise. */
export async function seedDemo(platform: Platform, log: Logger): Promise<Demo | null> {
  const { config, db, journal } = platform;
  if (!config.demo.enabled) return null;
  const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM bal_persons');
  if (rows[0].n > 0) return null;
  if (!platform.smtp) {
    log.warn('demo data skipped: it needs the SMTP servers (and so the LDAP directory)');
    return null;
  }
  const domain = config.operator.domain;
  const actor = 'demo';
  const dir = join(config.dataDir, 'demo');
  mkdirSync(dir, { recursive: true });

  // A small national annuaire: colleagues at other operators, found in the address book.
  const extraction = join(dir, 'Extraction_Correspondance_MSSante_202611010000.txt');
  writeFileSync(extraction, nationalExtraction(domain));
  const report = new RejectReport(join(dir, 'import-report.txt'));
  try {
    await importFiles([extraction], { db, journal, actor, report, ldap: platform.directory });
  } finally {
    report.close();
  }

  const ctx = operatorBalContext(config, db, journal, log);
  const people = [
    { who: 'Dr Jeanne Martin, cardiologue', login: 'jeanne.martin', idnps: DEV_RPPS, nom: 'MARTIN', prenom: 'Jeanne' },
    { who: 'Dr Paul Bernard, médecin généraliste', login: 'paul.bernard', idnps: COLLEAGUE_RPPS, nom: 'BERNARD', prenom: 'Paul' },
    { who: 'Marie Durand, secrétaire médicale', login: 'marie.durand', idnps: undefined, nom: 'DURAND', prenom: 'Marie' },
  ];
  const logins: DemoLogin[] = [];
  for (const p of people) {
    const password = generatePassword(16);
    await createPerson(ctx, { login: p.login, idnps: p.idnps, nom: p.nom, prenom: p.prenom, password }, actor);
    logins.push({ who: p.who, login: p.login, password, boxes: [] });
  }
  const box = (local: string) => `${local}@${domain}`;
  await createBal(ctx, { address: box('jeanne.martin'), type: 'PER', owner: DEV_RPPS, displayName: 'Dr Jeanne MARTIN', description: 'Cardiologie' }, actor);
  await createBal(ctx, { address: box('paul.bernard'), type: 'PER', owner: COLLEAGUE_RPPS, displayName: 'Dr Paul BERNARD' }, actor);
  await createBal(ctx, { address: box('secretariat.cardio'), type: 'ORG', owner: DEV_STRUCTURE_ID, service: 'Cardiologie', description: 'Secrétariat de cardiologie', displayName: 'Secrétariat cardiologie' }, actor);
  await addMember(ctx, box('secretariat.cardio'), { login: 'jeanne.martin' }, actor);
  await addMember(ctx, box('secretariat.cardio'), { login: 'marie.durand' }, actor);
  await createBal(ctx, { address: box('labo-resultats'), type: 'APP', owner: DEV_STRUCTURE_ID, description: 'Résultats du laboratoire (envoi automatique)', displayName: 'Laboratoire — résultats' }, actor);
  const lab = { address: box('labo-resultats'), certFile: join(config.pki.dir, 'application.pem'), keyFile: join(config.pki.dir, 'application.key') };
  await registerAppCertificate(ctx, lab.address, readFileSync(lab.certFile, 'utf8'), actor);
  // Every result reaching the cardiology secretariat goes on to the patient's DMP.
  if (platform.dmp) await setDmpRule({ db, journal }, { bal: box('secretariat.cardio'), masking: 'normal', actor });
  logins[0].boxes = [box('jeanne.martin'), box('secretariat.cardio')];
  logins[1].boxes = [box('paul.bernard')];
  logins[2].boxes = [box('secretariat.cardio')];
  await platform.directory?.sync();

  // Messages, through the platform's own submission server.
  const tls = { ca: readFileSync(config.tls.caFile, 'utf8'), servername: config.operator.hostname, ...nodeTlsPolicy() };
  const port = platform.smtp.ports.submissions;
  const as = (login: DemoLogin) => nodemailer.createTransport({ host: config.smtp.host, port, secure: true, tls, auth: { user: login.login, pass: login.password } });
  const nil = { 'X-MSS-NIL': 'mss-demo' };
  await as(logins[2]).sendMail({
    from: `Secrétariat cardiologie <${box('secretariat.cardio')}>`,
    to: box('jeanne.martin'),
    subject: 'Bienvenue sur votre messagerie MSSanté',
    text: 'Bonjour Docteur,\n\nVotre boîte aux lettres MSSanté est ouverte. Les messages du secrétariat arrivent aussi dans la boîte organisationnelle secretariat.cardio, que vous partagez avec Marie Durand.\n\nBien cordialement,\nLe secrétariat',
    headers: nil,
  });
  await as(logins[1]).sendMail({
    from: `Dr Paul BERNARD <${box('paul.bernard')}>`,
    to: box('secretariat.cardio'),
    subject: 'Demande de rendez-vous — M. Dupont',
    text: 'Bonjour,\n\nPourriez-vous proposer un rendez-vous de consultation de cardiologie à mon patient M. Dupont (douleurs thoraciques d’effort) ?\n\nMerci,\nDr Bernard',
    headers: { ...nil, 'Disposition-Notification-To': box('paul.bernard') },
  });
  // The lab's software logs in with its application certificate alone (no password).
  // A client sends its chain (leaf + intermediate): the server trusts only the root.
  const labChain = readFileSync(lab.certFile, 'utf8') + readFileSync(config.tls.chainFile, 'utf8');
  const labTransport = nodemailer.createTransport({ host: config.smtp.host, port, secure: true, tls: { ...tls, cert: labChain, key: readFileSync(lab.keyFile, 'utf8') } });
  await labTransport.sendMail(await demoResultMessage({ from: lab.address, to: [box('jeanne.martin'), box('secretariat.cardio')], rpps: DEV_RPPS }));

  const file = join(config.dataDir, 'demo-logins.txt');
  const lines = [
    `Demo accounts of ${domain} (created ${new Date().toISOString()}); passwords are shown once here and in this file.`,
    ...logins.map((l) => `${l.login}  ${l.password}  ${l.who}; boxes: ${l.boxes.join(', ')}`),
    `${lab.address}  application certificate ${lab.certFile} (key ${lab.keyFile})`,
    '',
  ];
  writeFileSync(file, lines.join('\n'), { mode: 0o600 });
  chmodSync(file, 0o600);
  log.info({ accounts: logins.map((l) => l.login), file }, 'demo data created');
  return { logins, lab, file };
}

/** A few professionals of other operators, in the national MSSanté extraction's exact format. */
function nationalExtraction(domain: string): string {
  const header =
    "Type de BAL|Adresse BAL|Type Identifiant PP|Identifiant PP|Identification nationale PP|Type identifiant structure|Identification Structure|Service de rattachement|Civilité d'exercice|Nom d'exercice|Prénom d'exercice|Catégorie profession|Libellé de catégorie profession|Code Profession|Libellé Profession|Code savoir-faire|Libellé savoir-faire|Dématérialisation|Raison Sociale structure BAL|Enseigne commerciale structure BAL|L2COMPLEMENTLOCALISATION structure BAL|L3COMPLEMENTDISTRIBUTION structure BAL|L4NUMEROVOIE structure BAL|L4COMPLEMENTNUMEROVOIE structure BAL|NL4TYPEVOIE structure BAL|L4LIBELLEVOIE structure BAL|L5LIEUDITMENTION structure BAL|L6LIGNEACHEMINEMENT structure BAL|Code postal structure BAL|Département structure BAL|Pays structure BAL";
  const per = (addr: string, rpps: string, civ: string, nom: string, prenom: string, prof: [string, string], sf: [string, string], rs: string, cp: string, ville: string) =>
    ['PER', addr, '8', rpps, '8' + rpps, '', '', '', civ, nom, prenom, 'C', 'Civil', prof[0], prof[1], sf[0], sf[1], 'O', rs, '', '', '', '12', '', 'R', 'de la République', '', `${cp} ${ville.toUpperCase()}`, cp, cp.slice(0, 2), 'France'].join('|');
  const org = (addr: string, finess: string, service: string, rs: string, cp: string, ville: string) =>
    ['ORG', addr, '', '', '', '1', '1' + finess, service, '', '', '', '', '', '', '', '', '', 'O', rs, '', '', '', '1', '', 'AV', 'des Hôpitaux', '', `${cp} ${ville.toUpperCase()}`, cp, cp.slice(0, 2), 'France'].join('|');
  const lines = [
    header,
    per('claire.lefevre@chu-exemple.mssante.fr', '10001000011', 'DR', 'LEFÈVRE', 'Claire', ['10', 'Médecin'], ['SM54', 'Cardiologie et maladies vasculaires'], 'CHU Exemple', '75013', 'Paris'),
    per('hugo.moreau@chu-exemple.mssante.fr', '10001000029', 'DR', 'MOREAU', 'Hugo', ['10', 'Médecin'], ['SM26', 'Qualifié en Médecine Générale'], 'CHU Exemple', '75013', 'Paris'),
    per('ines.garcia@pharma-exemple.mssante.fr', '10001000037', 'M', 'GARCIA', 'Inès', ['21', 'Pharmacien'], ['', ''], 'Pharmacie de la Gare', '69002', 'Lyon'),
    per('lucas.petit@medecin.mssante.fr', '10001000045', 'DR', 'PETIT', 'Lucas', ['10', 'Médecin'], ['SM26', 'Qualifié en Médecine Générale'], 'Cabinet Petit', '33000', 'Bordeaux'),
    per('chloe.roux@sagesfemmes.mssante.fr', '10001000052', 'MME', 'ROUX', 'Chloé', ['50', 'Sage-Femme'], ['', ''], 'Maternité Saint-Joseph', '13008', 'Marseille'),
    per('emile.faure@kine.mssante.fr', '10001000060', 'M', 'FAURE', 'Émile', ['70', 'Masseur-Kinésithérapeute'], ['', ''], 'Cabinet de kinésithérapie', '44000', 'Nantes'),
    org('urgences@chu-exemple.mssante.fr', '750000011', 'Urgences adultes', 'CHU Exemple', '75013', 'Paris'),
    org('laboratoire@biologie-exemple.mssante.fr', '690000022', 'Biologie médicale', 'Laboratoire Exemple', '69003', 'Lyon'),
  ];
  void domain;
  return lines.join('\r\n') + '\r\n';
}

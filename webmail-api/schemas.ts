// JSON schemas of the webmail API: they validate every input (400 problem+json otherwise),
// shape every output, and are the OpenAPI document served at /openapi.json and /docs.
import type { Masking } from '../dmp/types.js';

const str = { type: 'string' } as const;
const nstr = { type: ['string', 'null'] } as const;
const ndate = { type: ['string', 'null'], format: 'date-time' } as const;

/** The DMP's masking choices (dmp/types.ts Masking). */
export const MASKINGS = ['normal', 'masque-ps', 'invisible-patient', 'invisible-representants-legaux'] as const satisfies readonly Masking[];

/** One address, no display name, no list: what an envelope and the policy take. */
const email = { type: 'string', minLength: 3, maxLength: 254, pattern: '^[^\\s@<>,;:"()\\[\\]\\\\]+@[^\\s@<>,;:"()\\[\\]\\\\]+$' } as const;
/** A folder path as IMAP names it (hierarchy with its delimiter); no control character, no LIST wildcard. */
const folderName = { type: 'string', minLength: 1, maxLength: 255, pattern: '^[^\\x00-\\x1f\\x7f*%]+$' } as const;
const msgIdItem = { type: 'string', maxLength: 998, pattern: '^<?[^<>\\s]+>?$' } as const;
/** A header value travels on one line. */
const oneLine = (maxLength: number) => ({ type: 'string', maxLength, pattern: '^[^\\r\\n]*$' }) as const;

export { problemSchema as problem } from '../core/http.js';

export const address = { $id: 'Address', type: 'object', properties: { name: str, address: str } } as const;
const addresses = { type: 'array', items: { $ref: 'Address#' } } as const;

export const flags = {
  $id: 'Flags',
  type: 'object',
  properties: { seen: { type: 'boolean' }, flagged: { type: 'boolean' }, answered: { type: 'boolean' }, draft: { type: 'boolean' }, keywords: { type: 'array', items: str } },
} as const;

export const person = {
  $id: 'Person',
  type: 'object',
  properties: { login: str, idnps: nstr, auth: { ...str, description: 'how the person proved who they are at login: password, password+totp or psc (Pro Santé Connect)' }, acr: { ...nstr, description: 'Pro Santé Connect logins: the authentication level the provider asserted (acr)' } },
} as const;

export const bal = {
  $id: 'Bal',
  type: 'object',
  properties: {
    address: str,
    type: { type: 'string', enum: ['PER', 'ORG', 'APP', 'CAB'] },
    description: nstr,
    unseen: { type: ['integer', 'null'], description: 'with ?unseen=true: messages not yet seen in its INBOX (null: the box cannot be read right now)' },
  },
} as const;

export const folder = {
  $id: 'Folder',
  type: 'object',
  properties: { path: str, name: str, delimiter: str, specialUse: { ...nstr, description: '\\Sent, \\Trash, \\Drafts, \\Junk, or null' }, messages: { type: 'integer' }, unseen: { type: 'integer' } },
} as const;

export const messageSummary = {
  $id: 'MessageSummary',
  type: 'object',
  properties: {
    uid: { type: 'integer' },
    date: { ...ndate, description: 'arrival in the box (INTERNALDATE)' },
    sentAt: { ...ndate, description: 'the Date header' },
    subject: str,
    from: addresses,
    to: addresses,
    cc: addresses,
    messageId: nstr,
    size: { type: 'integer' },
    flags: { $ref: 'Flags#' },
    hasAttachments: { type: 'boolean' },
  },
} as const;

export const attachment = {
  $id: 'Attachment',
  type: 'object',
  properties: {
    index: { type: 'integer', description: 'for GET …/attachments/{index}' },
    part: { ...str, description: 'IMAP body part number' },
    filename: nstr,
    contentType: str,
    size: { type: 'integer', description: 'decoded size in bytes' },
    contentId: nstr,
    inline: { type: 'boolean' },
  },
} as const;

export const message = {
  $id: 'Message',
  type: 'object',
  properties: {
    uid: { type: 'integer' },
    bal: str,
    folder: str,
    date: ndate,
    size: { type: 'integer' },
    flags: { $ref: 'Flags#' },
    messageId: nstr,
    subject: str,
    sentAt: ndate,
    from: addresses,
    to: addresses,
    cc: addresses,
    bcc: { ...addresses, description: 'a draft\'s Bcc (a received message has none)' },
    replyTo: addresses,
    inReplyTo: nstr,
    references: { type: 'array', items: str },
    headers: { type: 'array', items: { type: 'object', properties: { name: str, value: str } } },
    dispositionNotificationTo: { ...nstr, description: 'the sender asked for a read receipt (POST …/mdn sends it)' },
    text: nstr,
    html: { ...nstr, description: 'sanitised: no script, style, form or event handler; images only cid: or data:' },
    attachments: { type: 'array', items: { $ref: 'Attachment#' } },
    encrypted: {
      type: ['object', 'null'],
      properties: { scheme: { type: 'string', enum: ['pgp-mime'] }, notice: str },
      description: 'set when the message is PGP/MIME encrypted to the box\'s OpenPGP key: only a mail client holding the private key reads it; `notice` says so in a sentence to show. Its attachments are the two RFC 3156 parts (the encrypted one is encrypted.asc)',
    },
    documents: { description: 'XDS metadata of the clinical documents carried (IHE_XDM.zip or a CDA document), read by dmp/; each with `view`: patient, type, author, date, confidentiality and the narrative as sanitised HTML, as the webmail shows it' },
    documentsError: { type: 'object', properties: { title: str, detail: str }, description: 'why the documents could not be read' },
    dmp: { type: 'array', items: { type: 'object', additionalProperties: true }, description: 'the DMP hand-offs of this message (by its Message-ID), newest first: status, masking, documents, errors, who, when' },
  },
} as const;

/** A box address; no "*" (the IMAP proxy's "box*person" separator). */
const balAddress = { ...email, pattern: '^[^\\s@<>,;:"()\\[\\]\\\\*%]+@[^\\s@<>,;:"()\\[\\]\\\\*%]+$' } as const;

export const balParams = { type: 'object', required: ['bal'], additionalProperties: false, properties: { bal: balAddress } } as const;
export const folderParams = { type: 'object', required: ['bal', 'folder'], additionalProperties: false, properties: { bal: balAddress, folder: folderName } } as const;
export const messageParams = {
  type: 'object',
  required: ['bal', 'folder', 'uid'],
  additionalProperties: false,
  properties: { bal: balAddress, folder: folderName, uid: { type: 'integer', minimum: 1, maximum: 4294967295 } },
} as const;
export const attachmentParams = {
  type: 'object',
  required: ['bal', 'folder', 'uid', 'index'],
  additionalProperties: false,
  properties: { ...messageParams.properties, index: { type: 'integer', minimum: 0, maximum: 9999 } },
} as const;

export const loginBody = {
  type: 'object',
  required: ['login', 'password'],
  additionalProperties: false,
  properties: {
    login: { type: 'string', minLength: 1, maxLength: 254, description: 'the person\'s login, or the address of their personal box' },
    password: { type: 'string', minLength: 1, maxLength: 1024 },
    otp: { type: 'string', pattern: '^[0-9]{6}$', description: 'TOTP code, for accounts with a second factor' },
  },
} as const;

export const balsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { unseen: { type: 'boolean', default: false, description: 'add each box\'s count of unseen messages in its INBOX (one IMAP STATUS per box)' } },
} as const;

export const listQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    page: { type: 'integer', minimum: 1, maximum: 1_000_000, default: 1 },
    pageSize: { type: 'integer', minimum: 1, maximum: 200, default: 50 },
    sort: { type: 'string', enum: ['date', 'from', 'subject'], default: 'date' },
    order: { type: 'string', enum: ['asc', 'desc'], default: 'desc' },
    // No control character: the words travel in an IMAP SEARCH command.
    q: { type: 'string', minLength: 1, maxLength: 200, pattern: '^[^\\x00-\\x1f\\x7f]+$', description: 'searched in headers and body (IMAP SEARCH TEXT)' },
    unseen: { type: 'boolean', default: false, description: 'only messages not yet seen' },
  },
} as const;

export const flagsBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: { seen: { type: 'boolean' }, flagged: { type: 'boolean' }, answered: { type: 'boolean' } },
} as const;

export const moveBody = { type: 'object', required: ['to'], additionalProperties: false, properties: { to: folderName } } as const;

export const sendBody = {
  type: 'object',
  required: ['to', 'subject'],
  additionalProperties: false,
  properties: {
    to: { type: 'array', minItems: 1, maxItems: 100, items: email },
    cc: { type: 'array', maxItems: 100, items: email, default: [] },
    bcc: { type: 'array', maxItems: 100, items: email, default: [] },
    subject: oneLine(998),
    text: { type: 'string' },
    html: { type: 'string' },
    inReplyTo: { type: 'string', maxLength: 998, pattern: '^<?[^<>\\s]+>?$', description: 'Message-ID of the message answered' },
    references: { type: 'array', maxItems: 100, items: msgIdItem, description: 'References (RFC 5322); with `original`, made by the server' },
    original: {
      type: 'object',
      required: ['folder', 'uid', 'action'],
      additionalProperties: false,
      description: 'the message of this box answered or forwarded: the server sets In-Reply-To and References from it (a forward: References only, and the original\'s attachments go along), and marks it \\Answered or $Forwarded once sent',
      properties: { folder: folderName, uid: { type: 'integer', minimum: 1, maximum: 4294967295 }, action: { type: 'string', enum: ['reply', 'forward'] } },
    },
    draft: { type: 'integer', minimum: 1, maximum: 4294967295, description: 'UID of a draft of this box (Drafts folder) this message continues: its attachments and thread go along, and it is deleted once sent (or saved anew)' },
    readReceipt: { type: 'boolean', default: false, description: 'ask for a read receipt (Disposition-Notification-To: this box)' },
    xdm: { type: 'boolean', default: false, description: 'send the CDA documents attached (.xml) as one IHE_XDM.zip built by the server, with X-MSS-INS and X-MSS-CODECDA (Ref #2); an empty subject becomes the XDM subject' },
    noPatientReply: { type: 'boolean', default: false, description: 'Mon Espace Santé: write X-MSS-MES: FIN, so the patient cannot answer this message' },
    nil: { type: 'string', minLength: 1, maxLength: 200, pattern: '^[\\x20-\\x7e]+$', description: 'X-MSS-NIL: the sending software (a DPI names itself)' },
    attachments: {
      type: 'array',
      maxItems: 100,
      default: [],
      items: {
        type: 'object',
        required: ['filename', 'content'],
        additionalProperties: false,
        properties: {
          filename: { ...oneLine(255), minLength: 1 },
          contentType: { type: 'string', maxLength: 255, pattern: '^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+$' },
          content: { type: 'string', pattern: '^[A-Za-z0-9+/=\\r\\n]*$', description: 'base64 (JSON); in multipart/form-data, the file parts named "attachments"' },
        },
      },
    },
  },
} as const;

/** A draft: the message's fields, none required (a draft may be half-written). */
export const draftBody = {
  ...sendBody,
  required: [],
  properties: { ...sendBody.properties, to: { ...sendBody.properties.to, minItems: 0, default: [] }, subject: { ...sendBody.properties.subject, default: '' } },
} as const;

export const mdnBody = { type: ['object', 'null'], additionalProperties: false, properties: { decline: { type: 'boolean', default: false, description: 'send nothing; remember the choice' } } } as const;

export const dmpRuleBody = {
  type: 'object',
  required: ['masking'],
  additionalProperties: false,
  properties: { masking: { type: 'string', enum: [...MASKINGS] }, enabled: { type: 'boolean', default: true } },
} as const;

export const dmpRule = {
  $id: 'DmpRule',
  type: 'object',
  properties: {
    bal: str,
    rule: { type: ['object', 'null'], properties: { masking: { type: 'string', enum: [...MASKINGS] }, enabled: { type: 'boolean' }, updatedAt: { type: 'string', format: 'date-time' }, createdBy: str } },
    maySet: { type: 'boolean', description: 'whether this person may change it (core/policy: a health professional member of the organisational box)' },
    why: { ...str, description: 'why not, when maySet is false' },
  },
} as const;

export const dmpBody = { type: ['object', 'null'], additionalProperties: false, properties: { masking: { type: 'string', enum: [...MASKINGS], default: 'normal' } } } as const;

export const annuaireQuery = {
  type: 'object',
  required: ['q'],
  additionalProperties: false,
  properties: { q: { type: 'string', minLength: 2, maxLength: 100, description: 'words; each must match a name, the address, the structure or the profession' } },
} as const;

export const recipient = {
  $id: 'Recipient',
  type: 'object',
  properties: { name: str, mail: str, profession: nstr, organisation: nstr, service: nstr, type: nstr },
} as const;

export const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, { $ref: 'Problem#' }]));

import type { Command } from 'commander';
import { registerAnnuaireImport } from './annuaire-import.js';
import { registerAnnuaireLdap } from './annuaire-ldap.js';
import { registerCerts } from './certs.js';
import { registerConfig } from './config.js';
import { registerDb } from './db.js';
import { registerJournal } from './journal.js';
import { registerStart } from './start.js';
import { registerAdmin } from './admin.js';
import { registerBal } from './bal.js';
import { registerWhitelist } from './whitelist.js';
import { registerQueue } from './queue.js';
import { registerDmp } from './dmp.js';
import { registerTlsAudit } from './tls-audit.js';
import { registerIndicators } from './indicators.js';
import { registerMailstore } from './mailstore.js';
import { registerBackup } from './backup.js';
import { registerCrypt } from './crypt.js';

// One file per subcommand family; each module's commands are thin wrappers over its functions.
export const commands: Array<(program: Command) => void> = [registerStart, registerJournal, registerDb, registerCerts, registerAnnuaireImport, registerAnnuaireLdap, registerBal, registerWhitelist, registerAdmin, registerQueue, registerDmp, registerIndicators, registerBackup, registerCrypt, registerTlsAudit, registerMailstore, registerConfig];

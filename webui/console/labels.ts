// Words and addresses the console's views share.
import type { BalType } from './types.js';

export const TYPE_LABEL: Record<BalType, string> = { PER: 'personnelle', ORG: 'organisationnelle', APP: 'applicative', CAB: 'cabinet' };
export const TYPE_PLURAL: Record<BalType, string> = { PER: 'Personnelles', ORG: 'Organisationnelles', APP: 'Applicatives', CAB: 'Cabinets' };
export const isBalType = (t: string | null): t is BalType => t === 'PER' || t === 'ORG' || t === 'APP' || t === 'CAB';

export const boxHref = (address: string) => `#/boite/${encodeURIComponent(address)}`;
export const journalEventHref = (seq: number) => `#/journal/${seq}`;
export const boxApi = (address: string) => `/api/v1/bals/${encodeURIComponent(address)}`;

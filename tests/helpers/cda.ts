// A CDA document whose narrative tries everything that must stay inert once shown in a page
// (script, event handlers, styles, links, images, CDATA markup): for the webmail's tests.
import { buildCdaDocument, INS_OIDS } from '../../dmp/cda.js';

export const HOSTILE_PATIENT = { ins: '279035121518989', oid: INS_OIDS[2], family: 'DUPONT', given: 'Jeanne', birthDate: '19790312', gender: 'F' as const };
/** A narrative that tries what must stay inert in a page. */
const HOSTILE_NARRATIVE =
  '<text><paragraph>Hémoglobine : <content styleCode="Bold">14 g/dL</content></paragraph>' +
  '<script>parent.__pwned = 1</script><paragraph onclick="parent.__pwned = 2" style="background:url(https://pwned.invalid/x)">clic</paragraph>' +
  '<renderMultiMedia referencedObject="img1"/><linkHtml href="javascript:parent.__pwned=3">lien</linkHtml>' +
  '<list listType="ordered"><item>un</item><item>deux</item></list>' +
  '<table><tbody><tr><td colspan="2" onmouseover="x()">Na 140</td></tr></tbody></table>' +
  '<paragraph><![CDATA[<img src=x onerror="parent.__pwned=4">]]></paragraph></text>';

export function hostileCda(): Buffer {
  const cda = buildCdaDocument({
    patient: HOSTILE_PATIENT,
    author: { rpps: '99999999901', family: 'LABO', given: 'Biologiste', organization: { name: 'Laboratoire Test' } },
    code: { code: '11502-2', scheme: '2.16.840.1.113883.6.1', display: "CR d'examens biologiques" },
    title: 'Résultats biologiques',
    text: 'x',
  }).toString('utf8');
  return Buffer.from(cda.replace(/<text>.*?<\/text>/s, HOSTILE_NARRATIVE), 'utf8');
}


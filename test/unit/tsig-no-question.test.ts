// "A signed query is verified first: every answer to a valid signature is signed, BADVERS and
// NOTIMP included" (README, Protocol; RFC 8945 5.3). A message of an opcode fedns implements in
// no form (IQUERY, STATUS, DSO, unassigned) is NOTIMP with a question or without one; with one it
// was signed, without one (as DSO messages are sent) it was answered unsigned, before its TSIG was
// looked at: a valid signature got an unsigned NOTIMP, and a key fedns does not hold got NOTIMP
// rather than NOTAUTH/BADKEY.
import { describe, expect, it } from 'vitest';
import { Rcode, RRType } from '../../src/wire/constants.js';
import { decodeMessage, encodeMessage } from '../../src/wire/message.js';
import { Responder } from '../../src/server/responder.js';
import { Federation } from '../../src/federation/federation.js';
import { lastAdditionalOffset, readTsig, responseProblem, signRequest, type TsigKey } from '../../src/wire/tsig.js';
import { testFederationSettings } from '../support/federation.js';

const KEY: TsigKey = { name: 'xfr-key.', algorithm: 'hmac-sha256.', secret: Buffer.from('0123456789abcdef0123456789abcdef') };
const OTHER: TsigKey = { name: 'other-key.', algorithm: 'hmac-sha256.', secret: Buffer.from('fedcba9876543210fedcba9876543210') };

/** A message of `opcode`, with or without a question, EDNS or not, signed with `key`. */
function signed(opcode: number, question: boolean, key: TsigKey, edns = false): Buffer {
  const m = encodeMessage({ id: 0x4242, questions: question ? [{ name: 'example.com.', type: RRType.SOA, class: 1 }] : [] });
  m.writeUInt16BE(opcode << 11, 2);
  const withOpt = edns ? Buffer.concat([m, Buffer.from([0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0])]) : m;
  if (edns) withOpt.writeUInt16BE(1, 10);
  return signRequest(withOpt, key);
}

const requestMac = (q: Buffer) => readTsig(q, lastAdditionalOffset(q)).mac;

describe('a signed message of an opcode fedns does not implement', () => {
  const fed = new Federation(testFederationSettings());
  const responder = new Responder(() => fed.snapshot);
  responder.tsigKeys = [KEY];

  for (const opcode of [1, 2, 3, 6, 7, 15])
    for (const transport of ['udp', 'tcp'] as const)
      for (const edns of [false, true])
        it(`opcode ${opcode} over ${transport}${edns ? ' with EDNS' : ''}: NOTIMP signed, with a question or without`, () => {
          for (const question of [true, false]) {
            const q = signed(opcode, question, KEY, edns);
            const out = responder.answer(q, transport);
            expect(out, `question: ${question}`).not.toBeNull();
            expect(decodeMessage(out!).rcode, `question: ${question}`).toBe(Rcode.NOTIMP);
            expect(responseProblem(out!, requestMac(q), KEY), `question: ${question}`).toBeUndefined();
          }
        });

  it('signed with a key fedns does not hold: NOTAUTH (BADKEY), with a question or without', () => {
    for (const opcode of [1, 6])
      for (const question of [true, false]) {
        const out = responder.answer(signed(opcode, question, OTHER), 'tcp');
        expect(out).not.toBeNull();
        const m = decodeMessage(out!);
        expect(m.rcode, `opcode ${opcode}, question: ${question}`).toBe(Rcode.NOTAUTH);
        expect(m.questions.length).toBe(question ? 1 : 0);
        expect(readTsig(out!, lastAdditionalOffset(out!)).error).toBe(17);
      }
    expect(responder.answerErrors).toBe(0);
  });
});

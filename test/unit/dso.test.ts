// Only a DSO message malformed in nothing but its missing question is NOTIMP (RFC 8490
// 5.1.1); one malformed otherwise stays FORMERR, and one with an EDNS version fedns lacks is BADVERS
// (RFC 6891 6.1.3), as Knot answers both and as fedns answers them with a question.
import { describe, expect, it } from 'vitest';
import { Rcode } from '../../src/wire/constants.js';
import { decodeMessage } from '../../src/wire/message.js';
import { Responder } from '../../src/server/responder.js';
import { Federation } from '../../src/federation/federation.js';
import { testFederationSettings } from '../support/federation.js';

const header = (ar: number, opcode = 6) => {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(0x0606, 0);
  b.writeUInt16BE(opcode << 11, 2);
  b.writeUInt16BE(ar, 10);
  return b;
};
const opt = (version = 0) => Buffer.from([0, 0, 41, 0x04, 0xd0, 0, version, 0, 0, 0, 0]);

describe('a DSO message without a question', () => {
  const fed = new Federation(testFederationSettings());
  const responder = new Responder(() => fed.snapshot);
  const rcode = (msg: Buffer) => decodeMessage(responder.answer(msg, 'tcp')!).rcode;

  it('with one OPT is NOTIMP', () => {
    expect(rcode(Buffer.concat([header(1), opt()]))).toBe(Rcode.NOTIMP);
  });

  it('with two OPT records is FORMERR (RFC 6891 6.1.1), as Knot answers', () => {
    expect(rcode(Buffer.concat([header(2), opt(), opt()]))).toBe(Rcode.FORMERR);
  });

  it('with an OPT of EDNS version 1 is BADVERS (RFC 6891 6.1.3), as Knot answers', () => {
    expect(rcode(Buffer.concat([header(1), opt(1)]))).toBe(Rcode.BADVERS);
  });
});

describe('a message of another opcode without a question', () => {
  const fed = new Federation(testFederationSettings());
  const responder = new Responder(() => fed.snapshot);
  const rcode = (msg: Buffer) => decodeMessage(responder.answer(msg, 'udp')!).rcode;

  it('is NOTIMP for an opcode fedns implements in no form (IQUERY, STATUS, unassigned), as Knot answers opcode 7', () => {
    for (const opcode of [1, 2, 3, 7, 15]) expect(rcode(Buffer.concat([header(1, opcode), opt()])), `opcode ${opcode}`).toBe(Rcode.NOTIMP);
  });

  it('is FORMERR for QUERY, NOTIFY (RFC 1996 3.7) and UPDATE (RFC 2136 3.1.1), whose messages carry one', () => {
    for (const opcode of [0, 4, 5]) expect(rcode(Buffer.concat([header(1, opcode), opt()])), `opcode ${opcode}`).toBe(Rcode.FORMERR);
  });
});

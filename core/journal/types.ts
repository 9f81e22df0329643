/**
 * What the journal needs from a timestamping authority (RFC 3161). The journal lives in
 * core and knows nothing of certificates: the platform hands it an implementation from
 * certs/ (the built-in TSA, or an external one over HTTP).
 */
export interface Timestamper {
  /** DER-encoded TimeStampResp (status granted, token included) over SHA-256(data). */
  stamp(data: Buffer): Promise<Buffer>;
}

export interface TokenVerifier {
  /**
   * Checks a DER TimeStampResp against data: message imprint, CMS signature, signer
   * certificate chaining to the trust anchors with extendedKeyUsage timeStamping.
   * Resolves with the token's time; rejects with an Error whose message says what is wrong.
   */
  verify(tsr: Buffer, data: Buffer): Promise<{ genTime: Date; serialNumber: string }>;
}

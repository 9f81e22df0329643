import { parse, protocol, type PGlite } from '@electric-sql/pglite';

/** Statements kept prepared in PGlite's backend, least recently used closed first. */
const MAX_PREPARED = 400;

type BackendMessage = { name: string } & Record<string, unknown>;

interface Prepared {
  name: string;
  /** Parameter types as the server inferred them: what each value is serialised as. */
  oids: number[];
}

/** A server error, as PGlite's own query path throws it (code, detail, position…). */
type DatabaseError = Error & { code?: string };

/**
 * The query path for PGlite, as named prepared statements: PGlite's own `query` parses,
 * describes and plans every statement anew in six round trips into WebAssembly (~0.4 ms
 * before any work); here a statement is parsed and described once per SQL text, and each
 * run is one call — Bind, Describe, Execute, Sync — whose answer is read with PGlite's
 * own protocol parser and result conversion. Values are serialised exactly as PGlite's
 * `query` does (by the type the server inferred for each parameter), so results and
 * errors are the same. Plans stay per execution (plan_cache_mode = force_custom_plan, set
 * at open): only parsing is saved, never a plan chosen for other values.
 *
 * Not re-entrant: the caller holds PGlite's query lock (and its transaction lock when not
 * inside a transaction), as PGlite's own query does.
 */
export class PreparedStatements {
  private readonly byText = new Map<string, Prepared>();
  private toClose: string[] = [];
  private next = 0;
  private readonly parser = new protocol.Parser();

  constructor(private readonly pg: PGlite) {}

  /** Runs one statement; throws the server's error as PGlite does. */
  run(sql: string, params: unknown[] = []): { rows: Record<string, unknown>[]; affectedRows?: number } {
    for (let attempt = 0; ; attempt++) {
      const st = this.prepare(sql);
      const values = params.map((v, i) => {
        if (v === null || v === undefined) return null;
        const serialize = this.pg.serializers[st.oids[i]];
        return serialize ? serialize(v) : String(v);
      });
      const messages = this.exchange([protocol.serialize.bind({ statement: st.name, values: values as string[] }), protocol.serialize.describe({ type: 'P' }), protocol.serialize.execute({}), protocol.serialize.sync()]);
      const error = messages.find((m) => m.name === 'error') as DatabaseError | undefined;
      if (error) {
        // The statement went away (closed elsewhere) or its result shape changed under it
        // (DDL since it was prepared): prepare it again, once.
        const stale = error.code === '26000' || (error.code === '0A000' && /cached plan/.test(error.message));
        if (stale) this.forget(sql);
        if (stale && attempt === 0) continue;
        throw error;
      }
      return parse.parseResults(messages as never, this.pg.parsers)[0] as { rows: Record<string, unknown>[]; affectedRows?: number };
    }
  }

  /** After DDL run outside this path (exec): statements are prepared again on next use. */
  invalidate() {
    for (const p of this.byText.values()) this.toClose.push(p.name);
    this.byText.clear();
  }

  private prepare(sql: string): Prepared {
    const known = this.byText.get(sql);
    if (known) {
      // Most recently used last: eviction takes the first.
      this.byText.delete(sql);
      this.byText.set(sql, known);
      return known;
    }
    const name = `mss_${++this.next}`;
    const messages = this.exchange([protocol.serialize.parse({ name, text: sql }), protocol.serialize.describe({ type: 'S', name }), protocol.serialize.sync()]);
    const error = messages.find((m) => m.name === 'error');
    if (error) throw error as unknown as DatabaseError;
    const prepared = { name, oids: parse.parseDescribeStatementResults(messages as never) };
    this.byText.set(sql, prepared);
    if (this.byText.size > MAX_PREPARED) {
      const [oldest, p] = this.byText.entries().next().value!;
      this.byText.delete(oldest);
      this.toClose.push(p.name);
    }
    return prepared;
  }

  private forget(sql: string) {
    const p = this.byText.get(sql);
    if (!p) return;
    this.byText.delete(sql);
    this.toClose.push(p.name);
  }

  /** One call into the backend: statements due to be closed first, then the given messages. */
  private exchange(parts: Uint8Array[]): BackendMessage[] {
    if (this.toClose.length) {
      // Close is answered even in a failed transaction; a name already gone is no error.
      parts = [...this.toClose.map((name) => protocol.serialize.close({ type: 'S', name })), ...parts];
      this.toClose = [];
    }
    let size = 0;
    for (const p of parts) size += p.length;
    const message = new Uint8Array(size);
    let at = 0;
    for (const p of parts) {
      message.set(p, at);
      at += p.length;
    }
    const out = this.pg.execProtocolRawSync(message);
    const messages: BackendMessage[] = [];
    this.parser.parse(out, (m) => messages.push(m as unknown as BackendMessage));
    return messages;
  }
}

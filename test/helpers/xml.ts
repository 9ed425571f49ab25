/**
 * A small, strict XML reader for checking the reports we write (JUnit): well-formedness (one root,
 * balanced tags, quoted attributes, no duplicate attributes, only the five predefined entities and
 * character references, no raw '<' or '&' in text), giving a tree to assert on. It is written from
 * the XML 1.0 rules, not from our writer, so it can catch the writer's mistakes.
 */
export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

const NAME = /^[A-Za-z_:][-A-Za-z0-9_:.]*$/;
const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decode(s: string, where: string): string {
  if (/[<]/.test(s)) throw new Error(`raw '<' in ${where}`);
  return s.replace(/&([^;]*);?/g, (m, body: string) => {
    if (!m.endsWith(';')) throw new Error(`unterminated reference ${JSON.stringify(m)} in ${where}`);
    if (ENTITIES[body] !== undefined) return ENTITIES[body]!;
    const num = /^#(?:x([0-9A-Fa-f]+)|([0-9]+))$/.exec(body);
    if (num) return String.fromCodePoint(parseInt(num[1] ?? num[2]!, num[1] ? 16 : 10));
    throw new Error(`unknown entity &${body}; in ${where}`);
  });
}

function parseAttrs(body: string, tag: string): Record<string, string> {
  const attrs: Record<string, string> = {};
  let rest = body.trim();
  while (rest.length) {
    const m = /^([^\s=]+)\s*=\s*("([^"]*)"|'([^']*)')\s*/.exec(rest);
    if (!m) throw new Error(`bad attribute syntax in <${tag}>: ${JSON.stringify(rest.slice(0, 40))}`);
    const name = m[1]!;
    if (!NAME.test(name)) throw new Error(`bad attribute name ${JSON.stringify(name)} in <${tag}>`);
    if (name in attrs) throw new Error(`duplicate attribute ${name} in <${tag}>`);
    attrs[name] = decode(m[3] ?? m[4]!, `attribute ${name} of <${tag}>`);
    rest = rest.slice(m[0].length);
  }
  return attrs;
}

export function parseXml(text: string): XmlElement {
  let s = text.replace(/^\uFEFF/, '');
  const decl = /^<\?xml\s[^?]*\?>\s*/.exec(s);
  if (decl) s = s.slice(decl[0].length);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0008\u000B\u000C\u000E-\u001F]/.test(s))
    throw new Error('control character not allowed in XML 1.0');
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  let pos = 0;
  while (pos < s.length) {
    const lt = s.indexOf('<', pos);
    const textPart = s.slice(pos, lt < 0 ? s.length : lt);
    if (textPart.trim().length) {
      if (!stack.length)
        throw new Error(`text outside the root element: ${JSON.stringify(textPart.slice(0, 40))}`);
      stack[stack.length - 1]!.text += decode(textPart, `<${stack[stack.length - 1]!.name}> text`);
    } else if (stack.length) stack[stack.length - 1]!.text += textPart;
    if (lt < 0) break;
    if (s.startsWith('<!--', lt)) {
      const end = s.indexOf('-->', lt);
      if (end < 0) throw new Error('unterminated comment');
      pos = end + 3;
      continue;
    }
    const gt = s.indexOf('>', lt);
    if (gt < 0) throw new Error('unterminated tag');
    const tag = s.slice(lt + 1, gt);
    pos = gt + 1;
    if (tag.startsWith('/')) {
      const name = tag.slice(1).trim();
      const open = stack.pop();
      if (!open || open.name !== name) throw new Error(`</${name}> closes <${open?.name ?? 'nothing'}>`);
      if (!stack.length) root = open;
      continue;
    }
    const selfClosing = tag.endsWith('/');
    const inner = selfClosing ? tag.slice(0, -1) : tag;
    const m = /^(\S+)([\s\S]*)$/.exec(inner);
    if (!m || !NAME.test(m[1]!)) throw new Error(`bad tag <${tag}>`);
    if (root) throw new Error('more than one root element');
    const el: XmlElement = { name: m[1]!, attrs: parseAttrs(m[2]!, m[1]!), children: [], text: '' };
    if (stack.length) stack[stack.length - 1]!.children.push(el);
    if (selfClosing) {
      if (!stack.length) root = el;
    } else stack.push(el);
  }
  if (stack.length) throw new Error(`<${stack[stack.length - 1]!.name}> is never closed`);
  if (!root) throw new Error('no root element');
  return root;
}

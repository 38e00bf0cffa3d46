/**
 * A small XML reader for the SVG figures: parses the document into a tree (failing on unbalanced
 * tags, unquoted attributes, or raw '<' and bare '&' in text) and finds vega's marks by class.
 */
export interface SvgNode {
  name: string;
  attrs: Record<string, string>;
  children: SvgNode[];
  /** Decoded text content of this element (not of its descendants). */
  text: string;
}

const ENTITY: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decode(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (m, e: string) => {
    if (e[0] === '#') return String.fromCodePoint(e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    const c = ENTITY[e];
    if (c === undefined) throw new Error(`unknown entity ${m}`);
    return c;
  });
}

export function parseSvg(svg: string): SvgNode {
  const root: SvgNode = { name: '#document', attrs: {}, children: [], text: '' };
  const stack = [root];
  const tag = /<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/y;
  let i = 0;
  while (i < svg.length) {
    const lt = svg.indexOf('<', i);
    const text = svg.slice(i, lt === -1 ? svg.length : lt);
    if (/&(?!(#x[0-9a-f]+|#[0-9]+|[a-z]+);)/i.test(text) || text.includes('>')) throw new Error(`unescaped text at ${i}: ${text.slice(0, 60)}`);
    stack[stack.length - 1]!.text += decode(text);
    if (lt === -1) break;
    tag.lastIndex = lt;
    const m = tag.exec(svg);
    if (!m) throw new Error(`malformed tag at ${lt}: ${svg.slice(lt, lt + 60)}`);
    const [, close, name, attrText, selfClose] = m;
    if (close) {
      const open = stack.pop()!;
      if (open.name !== name || stack.length === 0) throw new Error(`</${name}> closes <${open.name}>`);
    } else {
      const attrs: Record<string, string> = {};
      for (const a of attrText!.matchAll(/([\w:-]+)="([^"]*)"/g)) attrs[a[1]!] = decode(a[2]!);
      const node: SvgNode = { name: name!, attrs, children: [], text: '' };
      stack[stack.length - 1]!.children.push(node);
      if (!selfClose) stack.push(node);
    }
    i = tag.lastIndex;
  }
  if (stack.length !== 1) throw new Error(`unclosed <${stack[stack.length - 1]!.name}>`);
  if (root.children.length !== 1 || root.children[0]!.name !== 'svg') throw new Error('the document is not one <svg> element');
  return root.children[0]!;
}

export function findAll(n: SvgNode, pred: (n: SvgNode) => boolean, out: SvgNode[] = []): SvgNode[] {
  if (pred(n)) out.push(n);
  for (const c of n.children) findAll(c, pred, out);
  return out;
}

const classes = (n: SvgNode) => (n.attrs.class ?? '').split(/\s+/);

/** The items of vega marks of a type ('line', 'area', 'symbol', 'text'), by role, in document order: one array per mark. */
export function marks(svg: SvgNode, type: string, role = 'role-mark'): SvgNode[][] {
  return findAll(svg, (n) => n.name === 'g' && classes(n).includes(`mark-${type}`) && classes(n).includes(role)).map((g) => g.children);
}

/** The text of an element and its descendants; the lines of a multi-line text (tspans) joined by a space. */
export function textContent(n: SvgNode): string {
  return [n.text, ...n.children.map(textContent)].filter((t) => t !== '').join(' ');
}

/** The texts of the text marks with a role, such as 'role-axis-label' or 'role-title-text'. */
export function texts(svg: SvgNode, role: string): string[] {
  return marks(svg, 'text', role).flat().map(textContent);
}

/** The translate(x,y) of an item. */
export function translate(n: SvgNode): [number, number] {
  const m = /translate\(([-\d.e]+),\s*([-\d.e]+)\)/.exec(n.attrs.transform ?? '');
  if (!m) throw new Error(`no translate on <${n.name}>`);
  return [Number(m[1]), Number(m[2])];
}

/** The vertices of a path made of M and L commands (vega's linear lines and areas). */
export function pathPoints(d: string): [number, number][] {
  if (!/^[ML\d.,\s\-eZ]*$/.test(d)) throw new Error(`path has curves: ${d.slice(0, 60)}`);
  return [...d.matchAll(/[ML]\s*([-\d.e]+)[,\s]\s*([-\d.e]+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
}

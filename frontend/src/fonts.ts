// TensorBoard's typography in the iframe. TensorBoard serves Roboto itself
// and declares it in its page; an iframe does not inherit @font-face rules,
// so the same rules are copied (with absolute URLs) from the same-origin
// parent. Outside TensorBoard nothing is copied and the font stack falls back.

/**
 * Copies the parent's @font-face rules of `family`. `root` is TensorBoard's
 * root URL (with any --path_prefix): TensorBoard writes its font URLs as
 * root-absolute paths ("/font-roboto/..."), which miss a path prefix.
 */
export function borrowParentFonts(root: string, family = "Roboto"): boolean {
  let parentDoc: Document;
  try {
    if (!window.parent || window.parent === window) return false;
    parentDoc = window.parent.document;
  } catch {
    return false;
  }
  const rules: string[] = [];
  try {
    for (const sheet of Array.from(parentDoc.styleSheets)) {
      let list: CSSRuleList;
      try {
        list = sheet.cssRules;
      } catch {
        continue; // a cross-origin sheet
      }
      const base = sheet.href ?? parentDoc.baseURI;
      for (const rule of Array.from(list)) {
        // instanceof does not work across windows; the rule type does
        if (rule.constructor.name !== "CSSFontFaceRule") continue;
        const style = (rule as CSSFontFaceRule).style;
        if (!style.getPropertyValue("font-family").includes(family)) continue;
        const text = rule.cssText.replace(/url\((["']?)([^"')]+)\1\)/g, (_m, _q, u: string) => {
          try {
            const abs = u.startsWith("/") && !u.startsWith("//") ? new URL(u.slice(1), root) : new URL(u, base);
            return `url("${abs.href}")`;
          } catch {
            return `url("${u}")`;
          }
        });
        rules.push(text);
      }
    }
  } catch {
    return false;
  }
  if (rules.length === 0) return false;
  const sheet = new CSSStyleSheet();
  for (const r of rules) {
    try {
      sheet.insertRule(r, sheet.cssRules.length);
    } catch {
      // skip a rule this browser does not parse
    }
  }
  document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
  return true;
}

// The generated front-end page on its own (its golden file is in generate.test.ts): it loads
// nothing from another origin (works offline, no CDN), everything inline is allowed by the CSP's
// hashes and nothing else is inline, its script parses, and the API-key field is there only when
// the proxy asks for keys.

import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { renderComposeTemplate } from '../../../src/generators/compose-templates.js';
import { contentSecurityPolicy } from '../../../src/generators/proxy-protection.js';

function page(apiKey: boolean): string {
  return renderComposeTemplate('index.html', {
    title: 'Pets <demo> & co',
    service: 'invert',
    services: ['colours', 'invert', 'iris'],
    apiKey,
  });
}

const inline = (html: string, tag: string) =>
  [...html.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, 'g'))].map((m) => m[1]!);

describe('the generated front end page', () => {
  it('names no other origin: no URL with a scheme or //host, sources only data: or its own', () => {
    const html = page(true);
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).not.toMatch(/["'(]\/\/[a-z0-9]/i);
    for (const m of html.matchAll(/\b(?:src|href|action)\s*=\s*"([^"]*)"/g)) {
      expect(m[1], m[0]).toMatch(/^(data:|\/(?!\/)|#)/);
    }
    // No external script or stylesheet; every request the script makes is to /api/ of this origin.
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+stylesheet/);
    const script = inline(html, 'script')[0]!;
    for (const m of script.matchAll(/fetch\(([^,)]*)/g)) expect(m[1]).toMatch(/^`\/api\//);
  });

  it('the CSP allows exactly its one inline script and one inline style by hash; no inline handlers or style attributes', () => {
    const html = page(true);
    expect(inline(html, 'script')).toHaveLength(1);
    expect(inline(html, 'style')).toHaveLength(1);
    const csp = contentSecurityPolicy(html);
    expect(csp).toMatch(/script-src 'self' 'sha256-[A-Za-z0-9+/]+=*';/);
    expect(csp).toMatch(/style-src 'self' 'sha256-[A-Za-z0-9+/]+=*';/);
    expect(csp).toContain("img-src 'self' data:");
    expect(csp).toContain("connect-src 'self'");
    expect(html).not.toMatch(/\son[a-z]+\s*=\s*"/);
    expect(html).not.toMatch(/\sstyle\s*=\s*"/);
    // The script builds nothing the CSP would block: no eval, no inline handlers, no blob: URLs.
    const script = inline(html, 'script')[0]!;
    expect(script).not.toMatch(/\beval\(|new Function|innerHTML|createObjectURL/);
  });

  it('its script parses; the services are choices, the title is escaped', () => {
    const html = page(false);
    expect(() => new vm.Script(inline(html, 'script')[0]!)).not.toThrow();
    expect(html).toContain('<title>Pets demo  co</title>');
    expect(
      [...html.matchAll(/<option value="([^"]+)"( selected)?>/g)].map((m) => [m[1], Boolean(m[2])]),
    ).toEqual([
      ['colours', false],
      ['invert', true],
      ['iris', false],
    ]);
  });

  it('an API-key field only when the proxy asks for keys; the key is never stored', () => {
    expect(page(true)).toContain('<input id="key" name="key" type="password"');
    expect(page(false)).not.toContain('id="key"');
    const script = inline(page(true), 'script')[0]!;
    // What goes to sessionStorage is the list of calls, built without the key or the files.
    const remembered = /remember\(\{([^}]*)\}\)/.exec(script)![1]!;
    expect(remembered.split(',').map((s) => s.trim().split(':')[0])).toEqual([
      'at',
      'service',
      'status',
      'ms',
      'sent',
      'got',
    ]);
    expect(script).not.toMatch(/localStorage/);
  });
});

// The build context of mlship's model converter image (`wrap --compile onnx`,
// `--quantize int8`): a Dockerfile, pinned requirements and the converter script,
// named by a hash of their content so that a changed converter is a new image and an
// unchanged one is built once.

import { createHash } from 'node:crypto';
import type { GeneratedFile } from './wrap-spec.js';
import { renderTemplate, staticTemplate } from './wrap-templates.js';

/** Libraries a model may need beyond scikit-learn, with the converters that read them. */
export type ConverterExtra = 'lightgbm' | 'xgboost';

const EXTRA_REQUIREMENTS: Record<ConverterExtra, string[]> = {
  lightgbm: ['lightgbm==4.7.0', 'onnxmltools==1.16.0'],
  xgboost: ['xgboost==3.2.0', 'onnxmltools==1.16.0'],
};

/** Debian packages the library's wheel needs beside it. */
const EXTRA_SYSTEM_PACKAGES: Record<ConverterExtra, string[]> = {
  // LightGBM's wheel links OpenMP's libgomp, which slim images lack.
  lightgbm: ['libgomp1'],
  xgboost: [],
};

export function converterFiles(baseImage: string, extras: ConverterExtra[]): GeneratedFile[] {
  const extraLines = [...new Set(extras.flatMap((e) => EXTRA_REQUIREMENTS[e]))];
  const systemPackages = [...new Set(extras.flatMap((e) => EXTRA_SYSTEM_PACKAGES[e]))];
  const files: GeneratedFile[] = [
    {
      path: 'Dockerfile',
      content: renderTemplate('compile/Dockerfile', {
        baseImage,
        systemPackages,
        extras: extraLines.length > 0,
      }),
    },
    { path: 'requirements.txt', content: staticTemplate('compile/requirements.txt') },
    { path: 'convert.py', content: staticTemplate('compile/convert.py') },
  ];
  if (extraLines.length) {
    files.push({
      path: 'requirements-extra.txt',
      content: `# The model's own library and its converter (pinned).\n${extraLines.join('\n')}\n`,
    });
  }
  return files;
}

/** The converter image's tag: its content decides it. */
export function converterImage(files: GeneratedFile[]): string {
  const hash = createHash('sha256');
  for (const f of files) hash.update(f.path).update('\0').update(f.content).update('\0');
  return `mlship/wrap-converter:${hash.digest('hex').slice(0, 12)}`;
}

// Validates manifests against the Kubernetes OpenAPI-derived JSON schemas that the
// `kubernetes-validate` package ships (in .venv; .ci/run installs requirements-dev.txt).
// The "-strict" variant sets additionalProperties: false, so an unknown or misspelt
// field is an error, as `kubectl apply --validate=strict` would report it.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { CI } from './docker.js';

/** The Kubernetes version the manifests are checked against. */
export const K8S_VERSION = '1.31.0';

export type ManifestValidator = (manifest: { apiVersion: string; kind: string }) => string[];

export function loadK8sValidator(version = K8S_VERSION): ManifestValidator | undefined {
  const lib = path.resolve('.venv/lib');
  const py = existsSync(lib) ? readdirSync(lib).find((d) => d.startsWith('python')) : undefined;
  const dir = py
    ? path.join(
        lib,
        py,
        'site-packages/kubernetes_validate/kubernetes-json-schema',
        `v${version}-local-strict`,
      )
    : undefined;
  if (!dir || !existsSync(dir)) {
    if (CI)
      throw new Error(
        `CI is set but the Kubernetes schemas (kubernetes-validate ${version}) are missing from .venv (requirements-dev.txt)`,
      );
    console.warn(
      'skipping Kubernetes schema checks: .venv has no kubernetes-validate (requirements-dev.txt)',
    );
    return undefined;
  }
  // The schemas carry x-kubernetes-* annotations and OpenAPI formats (int32, byte) that
  // are not JSON Schema vocabulary: allow the keywords, ignore the formats.
  const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
  ajv.addSchema(JSON.parse(readFileSync(path.join(dir, '_definitions.json'), 'utf8')));
  const compiled = new Map<string, ValidateFunction>();
  return (manifest) => {
    // apps/v1 → apps-v1, autoscaling/v2 → autoscaling-v2, rbac.authorization.k8s.io/v1 → rbac-v1.
    const group = manifest.apiVersion.replace(/^([^./]*)(?:\.[^/]*)?\//, '$1-');
    const file = path.join(dir, `${manifest.kind.toLowerCase()}-${group}.json`);
    if (!existsSync(file)) return [`no schema for ${manifest.kind} ${manifest.apiVersion}`];
    let validate = compiled.get(file);
    if (!validate) {
      validate = ajv.compile(JSON.parse(readFileSync(file, 'utf8')));
      compiled.set(file, validate);
    }
    if (validate(manifest)) return [];
    return (validate.errors ?? []).map(
      (e) =>
        `${e.instancePath || '/'}: ${e.message}${e.keyword === 'additionalProperties' ? ` (${String(e.params.additionalProperty)})` : ''}`,
    );
  };
}

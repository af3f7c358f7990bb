// Where `mlship predict --service` sends its requests: a URL as given (…/predict added when
// missing), or a service of mlship.yaml through the local stack's proxy.

import { loadProject } from '../../config/load.js';
import { UsageError } from '../../io/errors.js';

export async function serviceUrl(service: string, configFile: string): Promise<string> {
  if (/^https?:\/\//.test(service)) {
    const base = service.replace(/\/+$/, '');
    return base.endsWith('/predict') ? base : `${base}/predict`;
  }
  const project = await loadProject(configFile);
  if (!project.services[service]) {
    throw new UsageError(`${configFile} has no service ${service}`, {
      hint: `pass a URL (http://…), or one of: ${Object.keys(project.services).join(', ') || 'none'}`,
    });
  }
  if (!project.proxy) {
    throw new UsageError(`the local stack of ${configFile} has no proxy to reach ${service} through`, {
      hint: 'pass the service URL instead (e.g. http://127.0.0.1:8080), or add `proxy: {}`',
    });
  }
  return `http://127.0.0.1:${project.proxy.port}/api/${service}/predict`;
}

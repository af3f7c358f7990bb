// Settings of running a stack (issue 21): local monitoring (Prometheus, Grafana, cAdvisor,
// the proxy's and GPUs' exporters), the proxy's protection (rate limits, API keys), and on
// AWS the alerts, budget and WAF of a deployed stack. Images are pinned upstream tags and
// overridable, like every image mlship runs.

import { z } from 'zod';

export const DEFAULT_MONITORING_IMAGES = {
  prometheus: 'prom/prometheus:v2.53.2',
  grafana: 'grafana/grafana:11.3.0',
  cadvisor: 'gcr.io/cadvisor/cadvisor:v0.49.1',
  nginx_exporter: 'nginx/nginx-prometheus-exporter:1.3.0',
  dcgm_exporter: 'nvcr.io/nvidia/k8s/dcgm-exporter:3.3.8-3.6.0-ubuntu22.04',
} as const;

const Image = z.string().min(1);
const LoopbackPort = z.number().int().min(1).max(65535);

export const MonitoringSchema = z
  .strictObject({
    images: z
      .strictObject({
        prometheus: Image.default(DEFAULT_MONITORING_IMAGES.prometheus).describe('Prometheus image.'),
        grafana: Image.default(DEFAULT_MONITORING_IMAGES.grafana).describe('Grafana image.'),
        cadvisor: Image.default(DEFAULT_MONITORING_IMAGES.cadvisor).describe(
          "cAdvisor image (the containers' CPU and memory).",
        ),
        nginx_exporter: Image.default(DEFAULT_MONITORING_IMAGES.nginx_exporter).describe(
          "NGINX exporter image (the proxy's connections and requests).",
        ),
        dcgm_exporter: Image.default(DEFAULT_MONITORING_IMAGES.dcgm_exporter).describe(
          'NVIDIA DCGM exporter image (GPU utilisation and memory; only when a service uses a GPU).',
        ),
      })
      .prefault({})
      .describe('Images of the monitoring services (pinned; override for mirrors).'),
    scrape_interval_seconds: z
      .number()
      .int()
      .min(1)
      .max(300)
      .default(5)
      .describe('How often Prometheus scrapes every target.'),
    retention: z
      .string()
      .regex(/^\d+[hdw]$/, { message: 'must be a duration such as "7d" or "12h"' })
      .default('7d')
      .describe('How long Prometheus keeps samples.'),
    grafana: z
      .boolean()
      .default(true)
      .describe(
        'Run Grafana with the provisioned dashboard (false: Prometheus only; the dashboard file is still written).',
      ),
    prometheus_port: LoopbackPort.default(9090).describe('Port of Prometheus on 127.0.0.1.'),
    grafana_port: LoopbackPort.default(3000).describe('Port of Grafana on 127.0.0.1.'),
  })
  .describe(
    'Local monitoring for `mlship compose`: Prometheus scraping every model service, the proxy and the containers, and Grafana with a dashboard of the stack.',
  );

export const RateLimitSchema = z
  .strictObject({
    requests_per_second: z
      .number()
      .int()
      .min(1)
      .max(100_000)
      .default(10)
      .describe('Sustained requests per second one client may send.'),
    burst: z
      .number()
      .int()
      .min(0)
      .max(100_000)
      .default(20)
      .describe('Requests above the rate answered at once before 429s begin.'),
  })
  .describe('Per-client rate limit at the proxy (NGINX limit_req): above it, 429 with Retry-After.');

export const WafSchema = z
  .strictObject({
    rate_limit: z
      .number()
      .int()
      .min(10)
      .max(2_000_000_000)
      .default(1000)
      .describe('Requests one IP address may send in 5 minutes before AWS WAF blocks it.'),
  })
  .describe('An AWS WAF web ACL with a rate-based rule on the load balancer (billed: see the plan).');

export const AlertsSchema = {
  budget_usd: z
    .number()
    .positive()
    .max(1_000_000)
    .optional()
    .describe(
      "A monthly AWS Budget for the stack's cost-allocation tag, with forecast alerts at 50/80/100% to alert_email.",
    ),
  alert_email: z
    .email({ message: 'must be an email address' })
    .optional()
    .describe(
      'Where alarms and budget alerts are sent (an SNS topic; confirm the subscription e-mail once).',
    ),
  monitoring: z
    .boolean()
    .default(true)
    .describe(
      "A CloudWatch dashboard and alarms for the stack, and the services' latency metrics in their logs.",
    ),
  waf: WafSchema.optional(),
};

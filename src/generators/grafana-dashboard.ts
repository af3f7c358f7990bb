// The Grafana dashboard of a local stack, as a typed object (serialized with
// JSON.stringify by the caller): per model service and version the latency percentiles,
// requests/s, 4xx/5xx, batch size and in-flight requests; the proxy; the containers' CPU
// and memory; the GPUs when a service uses one. Every query is written so that it returns
// a series for every service even when nothing happened yet (`or … * 0`), so no panel is
// empty on a quiet stack; the test runs each one against a real Prometheus.
// Shapes follow Grafana's dashboard schema (@grafana/schema), checked by a test.

/** A service the dashboard shows. */
export interface DashboardService {
  name: string;
  /** The image tag it runs ("dev" for a locally built one). */
  version: string;
}

export interface DashboardInput {
  stack: string;
  services: DashboardService[];
  /** Whether the stack has the NGINX proxy (its exporter is scraped). */
  proxy: boolean;
  /** Whether a service uses a GPU (the DCGM exporter is scraped). */
  gpu: boolean;
}

interface Target {
  refId: string;
  expr: string;
  legendFormat: string;
  datasource: { type: 'prometheus'; uid: string };
}

interface TimeseriesPanel {
  id: number;
  type: 'timeseries';
  title: string;
  description: string;
  datasource: { type: 'prometheus'; uid: string };
  gridPos: { h: number; w: number; x: number; y: number };
  fieldConfig: { defaults: { unit: string; min?: number }; overrides: [] };
  options: { legend: { displayMode: 'list'; placement: 'bottom'; showLegend: true } };
  targets: Target[];
}

interface RowPanel {
  id: number;
  type: 'row';
  title: string;
  collapsed: false;
  gridPos: { h: number; w: number; x: number; y: number };
  panels: [];
}

export interface GrafanaDashboard {
  uid: string;
  title: string;
  description: string;
  tags: string[];
  timezone: 'browser';
  editable: boolean;
  graphTooltip: 1;
  refresh: string;
  schemaVersion: number;
  version: number;
  time: { from: string; to: string };
  timepicker: Record<string, never>;
  templating: { list: [] };
  annotations: { list: [] };
  links: [];
  panels: (TimeseriesPanel | RowPanel)[];
}

/** The datasource the provisioning file declares, with this fixed uid. */
export const PROMETHEUS_DATASOURCE_UID = 'mlship-prometheus';

/** The rate window: four scrapes at the default 5 s interval, and smooth enough at 15 s. */
const WINDOW = '1m';
const PREDICT = 'endpoint=~"/predict.*"';
const BY = 'service, version';

/** Requests/s of the prediction endpoints, per service and version: also the "zero" every query falls back to. */
const requestRate = `sum by (${BY}) (rate(mlship_requests_total{job="models",${PREDICT}}[${WINDOW}]))`;
const zero = `${requestRate} * 0`;

export function latencyQuery(quantile: number): string {
  return `histogram_quantile(${quantile}, sum by (${BY}, le) (rate(mlship_request_duration_seconds_bucket{job="models",${PREDICT}}[${WINDOW}])))`;
}

function statusRate(pattern: string): string {
  return `(sum by (${BY}) (rate(mlship_requests_total{job="models",status=~"${pattern}"}[${WINDOW}]))) or (${zero})`;
}

/** Container metrics of cAdvisor, per compose service of this stack (its labels, renamed). */
function containerQuery(stack: string, metric: string, rate: boolean): string {
  const selector = `${metric}{container_label_com_docker_compose_project="${stack}",container_label_com_docker_compose_service!=""}`;
  const inner = rate ? `rate(${selector}[${WINDOW}])` : selector;
  return `label_replace(sum by (container_label_com_docker_compose_service) (${inner}), "service", "$1", "container_label_com_docker_compose_service", "(.*)")`;
}

interface PanelSpec {
  title: string;
  description: string;
  unit: string;
  queries: { expr: string; legend: string }[];
}

/** What every model service shows: latency, requests, errors, batch size, in-flight. */
const MODEL_PANELS: PanelSpec[] = [
  {
    title: 'Latency percentiles (/predict)',
    description: 'p50, p95 and p99 of the time each service takes to answer, from its own histogram.',
    unit: 's',
    queries: [0.5, 0.95, 0.99].map((q) => ({
      expr: latencyQuery(q),
      legend: `{{service}} {{version}} p${Math.round(q * 100)}`,
    })),
  },
  {
    title: 'Requests per second',
    description: 'Prediction requests answered per second (all gunicorn workers of a service counted once).',
    unit: 'reqps',
    queries: [{ expr: requestRate, legend: '{{service}} {{version}}' }],
  },
  {
    title: '4xx and 5xx per second',
    description: 'Answers with a client error (4xx: invalid input, too large) and a server error (5xx).',
    unit: 'reqps',
    queries: [
      { expr: statusRate('4..'), legend: '{{service}} {{version}} 4xx' },
      { expr: statusRate('5..'), legend: '{{service}} {{version}} 5xx' },
    ],
  },
  {
    title: 'Mean batch size',
    description: 'Inputs per model call with micro-batching (1 without it).',
    unit: 'short',
    queries: [
      {
        expr: `(sum by (${BY}) (rate(mlship_batch_size_sum{job="models"}[${WINDOW}])) / sum by (${BY}) (rate(mlship_batch_size_count{job="models"}[${WINDOW}])) > 0) or (${zero} + 1)`,
        legend: '{{service}} {{version}}',
      },
    ],
  },
  {
    title: 'In-flight requests',
    description: 'Requests being handled right now, all workers of a service together.',
    unit: 'short',
    queries: [
      {
        expr: `sum by (${BY}) (mlship_in_flight_requests{job="models"})`,
        legend: '{{service}} {{version}}',
      },
    ],
  },
];

const PROXY_PANELS: PanelSpec[] = [
  {
    title: 'Proxy requests per second',
    description: 'Every request NGINX handled (including those it refused: 401, 429).',
    unit: 'reqps',
    queries: [{ expr: `sum(rate(nginx_http_requests_total{job="proxy"}[${WINDOW}]))`, legend: 'proxy' }],
  },
  {
    title: 'Proxy connections',
    description: 'Open client connections, and those waiting (keep-alive).',
    unit: 'short',
    queries: [
      { expr: 'sum(nginx_connections_active{job="proxy"})', legend: 'active' },
      { expr: 'sum(nginx_connections_waiting{job="proxy"})', legend: 'waiting' },
    ],
  },
];

const containerPanels = (input: DashboardInput): PanelSpec[] => [
  {
    title: 'CPU per service',
    description: "CPU cores each service's container uses (cAdvisor).",
    unit: 'short',
    queries: [
      {
        expr: containerQuery(input.stack, 'container_cpu_usage_seconds_total', true),
        legend: '{{service}}',
      },
    ],
  },
  {
    title: 'Memory per service',
    description: "Working set of each service's container (what the kernel would not reclaim).",
    unit: 'bytes',
    queries: [
      {
        expr: containerQuery(input.stack, 'container_memory_working_set_bytes', false),
        legend: '{{service}}',
      },
    ],
  },
];

const GPU_PANELS: PanelSpec[] = [
  {
    title: 'GPU utilisation',
    description: 'Per GPU, from the NVIDIA DCGM exporter.',
    unit: 'percent',
    queries: [{ expr: 'avg by (gpu) (DCGM_FI_DEV_GPU_UTIL{job="gpu"})', legend: 'GPU {{gpu}}' }],
  },
  {
    title: 'GPU memory used',
    description: 'Frame buffer memory used, per GPU.',
    unit: 'decmbytes',
    queries: [{ expr: 'avg by (gpu) (DCGM_FI_DEV_FB_USED{job="gpu"})', legend: 'GPU {{gpu}}' }],
  },
];

/** The panels of a stack, in rows; each row's title, then its panels. */
export function dashboardPanels(input: DashboardInput): { row: string; panels: PanelSpec[] }[] {
  return [
    { row: 'Model services', panels: MODEL_PANELS },
    ...(input.proxy ? [{ row: 'Proxy', panels: PROXY_PANELS }] : []),
    { row: 'Containers', panels: containerPanels(input) },
    ...(input.gpu ? [{ row: 'GPUs', panels: GPU_PANELS }] : []),
  ];
}

/** Every query of the dashboard, by panel title (what the test runs against Prometheus). */
export function dashboardQueries(input: DashboardInput): { panel: string; expr: string }[] {
  return dashboardPanels(input).flatMap((r) =>
    r.panels.flatMap((p) => p.queries.map((q) => ({ panel: p.title, expr: q.expr }))),
  );
}

export function grafanaDashboard(input: DashboardInput): GrafanaDashboard {
  const datasource = { type: 'prometheus' as const, uid: PROMETHEUS_DATASOURCE_UID };
  const panels: GrafanaDashboard['panels'] = [];
  let id = 1;
  let y = 0;
  for (const row of dashboardPanels(input)) {
    panels.push({
      id: id++,
      type: 'row',
      title: row.row,
      collapsed: false,
      gridPos: { h: 1, w: 24, x: 0, y: y++ },
      panels: [],
    });
    row.panels.forEach((p, i) => {
      // Two panels side by side, 8 units high.
      const x = (i % 2) * 12;
      if (i > 0 && i % 2 === 0) y += 8;
      panels.push({
        id: id++,
        type: 'timeseries',
        title: p.title,
        description: p.description,
        datasource,
        gridPos: { h: 8, w: 12, x, y },
        fieldConfig: { defaults: { unit: p.unit, min: 0 }, overrides: [] },
        options: { legend: { displayMode: 'list', placement: 'bottom', showLegend: true } },
        targets: p.queries.map((q, j) => ({
          refId: String.fromCharCode(65 + j),
          expr: q.expr,
          legendFormat: q.legend,
          datasource,
        })),
      });
    });
    y += 8;
  }
  return {
    uid: `mlship-${input.stack}`.slice(0, 40),
    title: `mlship: ${input.stack}`,
    description: `Generated by mlship compose generate for stack ${input.stack}: ${input.services.map((s) => s.name).join(', ')}.`,
    tags: ['mlship', input.stack],
    timezone: 'browser',
    editable: true,
    graphTooltip: 1,
    refresh: '5s',
    schemaVersion: 39,
    version: 1,
    time: { from: 'now-15m', to: 'now' },
    timepicker: {},
    templating: { list: [] },
    annotations: { list: [] },
    links: [],
    panels,
  };
}

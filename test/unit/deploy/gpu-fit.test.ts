// GPU fit: every row of the bundled tables, the architecture rules (own kernels, binary
// compatibility within a major, PTX JIT), the two errors of a first cloud GPU deploy
// reported before anything runs, the AMI's driver (its description, the dated table),
// and the plan's hook: the fit shown, a misfit refused with exit 2.

import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { builtinMatrix } from '../../../src/core/bakeoff/matrix.js';
import {
  checkGpuFit,
  defaultAmiDriver,
  driverOfAmi,
  type GpuAmiFacts,
  gpuLabels,
  type ImageGpu,
  INSTANCE_GPUS,
  imageGpuFromLabels,
  imageGpuFromProbe,
  instanceGpu,
  newestCudaFor,
  runsOn,
  tableDriver,
} from '../../../src/core/deploy/gpu-fit.js';
import data from '../../../src/core/deploy/gpu-fit-data.json' with { type: 'json' };
import { planEcs } from '../../../src/core/deploy/plan.js';
import { MlshipError } from '../../../src/io/errors.js';

const matrix = builtinMatrix();
const image = (cuda: string | null, archs: string[]): ImageGpu => ({
  framework: 'torch 2.x',
  cuda,
  archs,
  minDriver: cuda ? matrix.cuda[cuda]!.minDriver : null,
  minDriverCompat: cuda ? matrix.cuda[cuda]!.minDriverCompat : null,
});
const al2023 = {
  driver: '580.159.03',
  ami: 'ami-1 (al2023-ami-ecs-gpu-hvm-2023.0.20260820)',
  source: 'test',
};
const al2 = { driver: '550.163.01', ami: 'ami-2 (amzn2-ami-ecs-gpu-hvm-2.0.20260820)', source: 'test' };

describe('the bundled tables', () => {
  it('every instance family: its own architecture fits; the family of another major does not', () => {
    expect(INSTANCE_GPUS.length).toBe(Object.keys(data.instanceGpus).length);
    for (const g of INSTANCE_GPUS) {
      expect(instanceGpu(`${g.family}.2xlarge`), g.family).toEqual(g);
      const own = `sm_${g.cc.replace('.', '')}`;
      expect(runsOn([own], g.cc), g.family).toBe('sass');
      const fit = checkGpuFit({
        image: 'img',
        imageGpu: image('12.8', [own]),
        instanceType: `${g.family}.xlarge`,
        driver: al2023,
        matrix,
      });
      expect(fit.problems, g.family).toEqual([]);
      expect(fit.lines[0], g.family).toMatch(
        new RegExp(`\\(${g.gpu.replace(/[()]/g, '.')}, ${g.cc}\\): fits`),
      );
      const other = Number(g.cc.split('.')[0]) >= 9 ? 'sm_75' : 'sm_90';
      const misfit = checkGpuFit({
        image: 'img',
        imageGpu: image('12.8', [other]),
        instanceType: `${g.family}.xlarge`,
        driver: al2023,
        matrix,
      });
      expect(misfit.problems, g.family).toHaveLength(1);
    }
  });

  it('every AMI driver row: the version it starts at answers it; before the table, unknown', () => {
    for (const [os, rows] of Object.entries(data.ecsGpuAmiDrivers) as [
      GpuAmiFacts['os'],
      { from: string; driver: string }[],
    ][]) {
      for (const row of rows) {
        expect(tableDriver(os, row.from), `${os} ${row.from}`).toEqual(row);
        expect(driverOfAmi({ id: 'ami-x', os, version: row.from }).driver).toBe(row.driver);
      }
      expect(tableDriver(os, '20240101')).toBeUndefined();
    }
    expect(defaultAmiDriver().driver).toBe('580.159.03');
  });
});

describe('architectures', () => {
  it('a cubin runs on newer minors of its major; PTX JIT-compiles for anything newer; sm_XYa only on X.Y', () => {
    expect(runsOn(['sm_80'], '8.6')).toBe('sass');
    expect(runsOn(['sm_86'], '8.0')).toBeUndefined();
    expect(runsOn(['sm_80', 'compute_80'], '9.0')).toBe('ptx');
    expect(runsOn(['sm_90a'], '9.0')).toBe('sass');
    expect(runsOn(['sm_90a'], '10.0')).toBeUndefined();
    expect(runsOn(['sm_100'], '10.0')).toBe('sass');
    expect(runsOn(['7.5', '8.0+PTX'], '8.9')).toBe('sass');
    expect(runsOn(['7.5', '8.6+PTX'], '9.0')).toBe('ptx');
  });

  it('PTX alone needs a driver with full support of the build: minor-version compatibility cannot JIT it', () => {
    const ptxOnly = image('13.0', ['sm_80', 'compute_80']);
    expect(
      checkGpuFit({ image: 'img', imageGpu: ptxOnly, instanceType: 'p5.48xlarge', driver: al2023, matrix })
        .problems,
    ).toEqual([]);
    const compat = { ...al2023, driver: '580.65.06' }; // 13.0 Update 2 needs 580.95.05 for full support
    const fit = checkGpuFit({
      image: 'img',
      imageGpu: ptxOnly,
      instanceType: 'p5.48xlarge',
      driver: compat,
      matrix,
    });
    expect(fit.problems[0]).toMatch(
      /only by JIT-compiling its PTX.*fix: a build with sm_90, or a driver >= 580\.95\.05/,
    );
  });
});

describe('the two errors of the talk, reported before deploy', () => {
  it('"Unknown CUDA arch (8.6)": an sm_86 GPU (g5) and an image built without 8.6', () => {
    const fit = checkGpuFit({
      image: 'pose:1',
      imageGpu: image('12.8', ['sm_70', 'sm_75']),
      instanceType: 'g5.xlarge',
      driver: al2023,
      matrix,
    });
    expect(fit.problems).toHaveLength(1);
    const p = fit.problems[0]!;
    expect(p).toMatch(/pose:1 has no kernels for the A10G of g5\.xlarge \(compute capability 8\.6\)/);
    expect(p).toContain('Unknown CUDA arch (8.6) or GPU not supported');
    // The instance types it would run on, and the build that would run on this one.
    expect(p).toMatch(
      /--gpu-instance of a family it runs on: p3 \(V100, 7\.0\), p3dn \(V100, 7\.0\), g4dn \(T4, 7\.5\)/,
    );
    expect(p).toMatch(
      /a build that includes sm_86 \(or sm_80, which runs on every 8\.x\).*TORCH_CUDA_ARCH_LIST="8\.6\+PTX"/,
    );
    expect(fit.lines[0]).toMatch(/DOES NOT FIT/);
  });

  it('"The NVIDIA driver on your system is too old": a CUDA 13 image on an AMI with driver 550', () => {
    const fit = checkGpuFit({
      image: 'pose:2',
      imageGpu: image('13.0', ['sm_75', 'sm_80', 'sm_86', 'sm_90']),
      instanceType: 'g5.xlarge',
      driver: al2,
      matrix,
    });
    expect(fit.problems).toHaveLength(1);
    expect(fit.problems[0]).toMatch(
      /driver 550\.163\.01 of ami-2 .* is too old for pose:2's CUDA 13\.0, which needs 580\.65\.06 or newer/,
    );
    expect(fit.problems[0]).toContain('The NVIDIA driver on your system is too old');
    // The newest CUDA this driver runs, and a build for it.
    expect(newestCudaFor('550.163.01', matrix)).toEqual({ full: '12.4', compat: '12.9' });
    expect(fit.problems[0]).toMatch(
      /fix: a build for CUDA 12\.9 or older, which this driver runs \(fully up to 12\.4\), e\.g\. torch 2\.10\.0 with CUDA 12\.8/,
    );
  });

  it('no labels, a CPU build, an instance type the table lacks: said, never refused', () => {
    const none = checkGpuFit({
      image: 'x',
      imageGpu: undefined,
      instanceType: 'g5.xlarge',
      driver: al2023,
      matrix,
    });
    expect(none.problems).toEqual([]);
    expect(none.lines[0]).toMatch(
      /unknown: the image has no dev\.mlship\.cuda\.version label .*mlship doctor --image x --gpu-instance g5\.xlarge/,
    );
    expect(
      checkGpuFit({
        image: 'x',
        imageGpu: image(null, []),
        instanceType: 'g5.xlarge',
        driver: al2023,
        matrix,
      }).lines[0],
    ).toMatch(/CPU build/);
    expect(
      checkGpuFit({
        image: 'x',
        imageGpu: image('12.8', ['sm_86']),
        instanceType: 'x9z.large',
        driver: al2023,
        matrix,
      }).lines[0],
    ).toMatch(/not in the GPU table/);
  });
});

describe('labels and the AMI', () => {
  it('labels round-trip; a probe picks the CUDA framework and the drivers of its CUDA from the matrix', () => {
    const g = image('12.8', ['sm_86', 'compute_90']);
    expect(imageGpuFromLabels(gpuLabels(g))).toEqual(g);
    expect(imageGpuFromLabels({ 'org.opencontainers.image.title': 'x' })).toBeUndefined();
    const probed = imageGpuFromProbe(
      [
        { name: 'onnxruntime', version: '1.32.0', cuda: null, archs: [] },
        {
          name: 'torch',
          version: '2.15.0+cu132',
          cuda: '13.2',
          archs: ['sm_75', 'sm_80', 'sm_90', 'compute_90'],
        },
      ],
      matrix,
    );
    expect(probed).toEqual({
      framework: 'torch 2.15.0+cu132',
      cuda: '13.2',
      archs: ['sm_75', 'sm_80', 'sm_90', 'compute_90'],
      minDriver: '580.95.05',
      minDriverCompat: '580.65.06',
    });
  });

  it('the driver from the AMI description when written there, else from the dated table by the AMI version', () => {
    expect(
      driverOfAmi({
        id: 'ami-9',
        os: 'amazon-linux-2023',
        description: 'ECS GPU AMI, NVIDIA driver 590.44.01',
      }),
    ).toMatchObject({
      driver: '590.44.01',
      source: 'the AMI description',
    });
    expect(
      driverOfAmi({
        id: 'ami-8',
        os: 'amazon-linux-2023',
        name: 'al2023-ami-ecs-gpu-hvm-2023.0.20260301-kernel-6.1-x86_64',
      }),
    ).toMatchObject({
      driver: '580.126.09',
      source: expect.stringMatching(/bundled table dated .* \(ECS GPU AMI 20260206 and later\)/),
    });
  });
});

describe('the plan shows the fit and refuses a misfit (exit 2)', () => {
  const stackDir = () => {
    const dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'mlship-gpufit-')), 'pose');
    mkdirSync(dir);
    writeFileSync(
      path.join(dir, 'compose.yaml'),
      'services:\n  detector:\n    image: registry.local/team/detector:1\n    deploy:\n      resources:\n        limits: { memory: 6g }\n        reservations:\n          devices: [{ driver: nvidia, count: 1, capabilities: [gpu] }]\n',
    );
    return path.join(dir, 'compose.yaml');
  };
  const base = {
    region: 'eu-west-1',
    accountId: '123456789012',
    imageTag: 't',
    force: false,
    writeFiles: false,
  };
  const labelled = (g: ImageGpu) => ({
    async labels(ref: string) {
      return ref === 'registry.local/team/detector:1'
        ? { labels: gpuLabels(g), source: 'registry' as const }
        : undefined;
    },
  });

  it('a fitting image: the fit is a line of the plan, with the AMI the region names (SSM)', async () => {
    const asked: string[] = [];
    const r = await planEcs({
      ...base,
      file: stackDir(),
      gpuInstanceType: 'g6.xlarge',
      gpuFit: {
        images: labelled(image('13.0', ['sm_75', 'sm_80', 'sm_86', 'sm_89', 'sm_90', 'compute_90'])),
        gpuAmi: {
          async recommendedGpuAmi() {
            asked.push('ssm');
            return {
              id: 'ami-0abc',
              os: 'amazon-linux-2023',
              name: 'al2023-ami-ecs-gpu-hvm-2023.0.20260820-kernel-6.1-x86_64',
              version: '20260820',
            };
          },
        },
        matrix,
      },
    });
    expect(asked).toEqual(['ssm']);
    expect(r.plan.find((l) => l.startsWith('GPU fit'))).toMatch(
      /^GPU fit of registry\.local\/team\/detector:1 on g6\.xlarge \(L4, 8\.9\): fits: torch 2\.x CUDA 13\.0, built for it .*; driver 580\.159\.03 \(the bundled table dated .*\)$/,
    );
    expect(r.gpuFit?.[0]?.problems).toEqual([]);
  });

  it('the default instance type goes through it too: a misfit is refused before anything is written', async () => {
    const file = stackDir();
    const err = await planEcs({
      ...base,
      file,
      gpuFit: { images: labelled(image('12.8', ['sm_90'])), matrix },
    }).catch((e) => e);
    expect(err).toBeInstanceOf(MlshipError);
    expect((err as MlshipError).code).toBe('GPU_MISFIT');
    expect((err as MlshipError).exitCode).toBe(2);
    expect((err as MlshipError).details[0]).toMatch(
      /has no kernels for the T4 of g4dn\.xlarge.*p5 \(H100, 9\.0\)/,
    );
  });
});

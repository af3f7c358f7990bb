// The rules that know ML images: what each reports, at which line, with which
// fix. Where each must stay silent is the false-positive corpus (ml-silent.test.ts).

import { describe, expect, it } from 'vitest';
import { cudaImage, pythonLessBase, runtimeOf } from '../../../src/core/optimize/images.js';
import { bundlesCuda, nameFromSource, parsePipInstall } from '../../../src/core/optimize/packages.js';
import { df, findings, hits, snapshot } from './helpers.js';

const CUDA_RT = 'FROM nvidia/cuda:12.4.1-runtime-ubuntu22.04';
const APT_PIP =
  'RUN apt-get update && apt-get install -y --no-install-recommends python3-pip && rm -rf /var/lib/apt/lists/*';

describe('python-missing', () => {
  it('reports pip on a CUDA image as an error at the line that fails, with the venv fix', () => {
    const text = df(
      'FROM nvidia/cuda:12.4.1-base-ubuntu20.04',
      'WORKDIR /app',
      'RUN pip install -r requirements.txt',
    );
    const f = findings(text).find((x) => x.rule === 'python-missing')!;
    expect(f).toMatchObject({ line: 3, severity: 'error' });
    expect(f.message).toMatch(
      /pip is not installed: nvidia\/cuda:12\.4\.1-base-ubuntu20\.04 ships neither Python nor pip/,
    );
    expect(f.fix).toMatch(/python3 -m venv \/opt\/venv/);
    expect(f.fix).toMatch(/--write` adds the install/);
  });
  it('covers ubuntu, debian and alpine, python as well as pip, and the CMD when nothing else uses it', () => {
    expect(hits(df('FROM ubuntu:22.04', 'RUN python3 -m pip install six'), 'python-missing')).toEqual([2]);
    expect(hits(df('FROM debian:bookworm', 'RUN python3 prepare.py'), 'python-missing')).toEqual([2]);
    expect(hits(df('FROM alpine:3.20', 'RUN apk upgrade', 'RUN pip install six'), 'python-missing')).toEqual([
      3,
    ]);
    expect(
      hits(df('FROM ubuntu:22.04', 'COPY app.py /', 'CMD ["python3", "/app.py"]'), 'python-missing'),
    ).toEqual([3]);
    const alpine = findings(df('FROM alpine:3.20', 'RUN pip install six')).find(
      (x) => x.rule === 'python-missing',
    )!;
    expect(alpine.fix).toMatch(/apk add --no-cache python3/);
  });
  it('installing python3 alone does not bring pip; an unrelated package may bring python3 but never pip', () => {
    expect(
      hits(
        df('FROM ubuntu:22.04', 'RUN apt-get update && apt-get install -y python3', 'RUN pip3 install six'),
        'python-missing',
      ),
    ).toEqual([]);
    expect(
      hits(
        df('FROM ubuntu:22.04', 'RUN apt-get update && apt-get install -y git', 'RUN pip install six'),
        'python-missing',
      ),
    ).toEqual([3]);
  });
  it('is silenced like every rule', () => {
    expect(
      hits(
        df('FROM ubuntu:22.04', '# mlship-ignore: python-missing', 'RUN pip install six'),
        'python-missing',
      ),
    ).toEqual([]);
  });
});

describe('dev-server', () => {
  it.each([
    ['["flask", "run", "--host=0.0.0.0"]', /flask run/],
    ['["python3", "-m", "flask", "run"]', /flask run/],
    ['flask run --host=0.0.0.0', /flask run/],
    ['["uvicorn", "app:app", "--reload"]', /--reload/],
    ['["python", "-m", "http.server", "8000"]', /http\.server/],
    ['["python", "manage.py", "runserver", "0.0.0.0:8000"]', /runserver/],
    ['["jupyter", "notebook", "--ip=0.0.0.0"]', /Jupyter server/],
    ['["fastapi", "dev", "app.py"]', /fastapi dev/],
    ['["gradio", "app.py"]', /reload mode/],
    ['["npm", "run", "dev"]', /development server/],
    ['["sh", "-c", "cd /app && exec flask run"]', /flask run/],
  ])('reports CMD %s', (cmd, what) => {
    const f = findings(df('FROM python:3.11-slim', `CMD ${cmd}`)).find((x) => x.rule === 'dev-server');
    expect(f?.line).toBe(2);
    expect(f?.message).toMatch(what);
  });
  it('reads app.run() in the script the command runs, from the build context', () => {
    const ctx = snapshot({ 'app.py': 200 }, '.git\n', {
      'app.py':
        'from flask import Flask\napp = Flask(__name__)\n\nif __name__ == "__main__":\n    app.run(debug=True)\n',
    });
    const text = df('FROM python:3.11-slim', 'WORKDIR /srv', 'COPY app.py .', 'CMD ["python", "app.py"]');
    const f = findings(text, { context: ctx }).find((x) => x.rule === 'dev-server')!;
    expect(f.line).toBe(4);
    expect(f.message).toMatch(
      /app\.py starts Flask's development server \(`app\.run\(debug=True\)` on its line 5\)/,
    );
    expect(f.fix).toMatch(/gunicorn|mlship wrap/);
    // ENTRYPOINT ["python"] with CMD ["app.py"] is the same command.
    const split = df(
      'FROM python:3.11-slim',
      'WORKDIR /srv',
      'COPY app.py .',
      'ENTRYPOINT ["python"]',
      'CMD ["app.py"]',
    );
    expect(hits(split, 'dev-server', { context: ctx })).toEqual([5]);
    // A FastAPI script is not Flask.
    const other = snapshot({ 'app.py': 10 }, '.git\n', { 'app.py': 'import uvicorn\nuvicorn.run(app)\n' });
    expect(hits(text, 'dev-server', { context: other })).toEqual([]);
  });
});

describe('cuda-twice', () => {
  it('reports torch from PyPI on a CUDA runtime image, suggesting the slim python of the same version', () => {
    const text = df(CUDA_RT, APT_PIP, 'RUN pip3 install --no-cache-dir torch==2.5.1 fastapi==0.115.0');
    const f = findings(text).find((x) => x.rule === 'cuda-twice')!;
    expect(f.line).toBe(3);
    expect(f.message).toMatch(/two CUDA stacks/);
    expect(f.fix).toMatch(/^start from python:3\.10-slim/);
    expect(f.fix).toMatch(/--layers/);
  });
  it('keeps the CUDA wheel index it was given, and reads requirements files from the context', () => {
    const idx = df(
      CUDA_RT,
      APT_PIP,
      'RUN pip3 install torch==2.4.1 --index-url https://download.pytorch.org/whl/cu118',
    );
    expect(findings(idx).find((x) => x.rule === 'cuda-twice')!.fix).toMatch(
      /with its index \(https:\/\/download\.pytorch\.org\/whl\/cu118\)/,
    );
    const ctx = snapshot({ 'requirements.txt': 30 }, '.git\n', {
      'requirements.txt': 'tensorflow[and-cuda]==2.17.0\n',
    });
    const req = df(
      CUDA_RT,
      APT_PIP,
      'WORKDIR /app',
      'COPY requirements.txt .',
      'RUN pip3 install -r requirements.txt',
    );
    expect(hits(req, 'cuda-twice', { context: ctx })).toEqual([5]);
  });
  it('knows which wheels bring CUDA', () => {
    const r = (s: string) => parsePipInstall([s]).requirements[0]!;
    expect(bundlesCuda(r('torch==2.5.1'), [])).toBe(true);
    expect(bundlesCuda(r('torch==2.5.1'), ['https://download.pytorch.org/whl/cpu'])).toBe(false);
    expect(bundlesCuda(r('tensorflow[and-cuda]'), [])).toBe(true);
    expect(bundlesCuda(r('tensorflow'), [])).toBe(false);
    expect(bundlesCuda(r('jax[cuda12]'), [])).toBe(true);
    expect(bundlesCuda(r('nvidia-cudnn-cu12'), [])).toBe(true);
    expect(nameFromSource('git+https://github.com/huggingface/diffusers.git@v0.30.0')).toBe('diffusers');
    expect(nameFromSource('/wheels/flash_attn-2.6.3-cp311-cp311-linux_x86_64.whl')).toBe('flash-attn');
  });
});

describe('cuda-devel-runtime', () => {
  it('says what the final stage builds, and proposes the builder split instead of a switch that breaks it', () => {
    const text = df(
      'FROM pytorch/pytorch:2.5.1-cuda12.4-cudnn9-devel',
      'RUN git clone https://github.com/NVIDIA/apex && cd apex && pip install --global-option=--cuda_ext .',
    );
    const f = findings(text).find((x) => x.rule === 'cuda-devel-runtime')!;
    expect(f.message).toMatch(/and builds with it \(line 2: pip install \. builds a local project/);
    expect(f.fix).toMatch(/pip wheel --no-deps/);
    expect(f.fix).toMatch(/pytorch\/pytorch:2\.5\.1-cuda12\.4-cudnn9-runtime/);
  });
  it('says a step it cannot see may need the devel image', () => {
    const f = findings(
      df('FROM nvidia/cuda:12.4.1-devel-ubuntu22.04', 'COPY . /src', 'RUN /src/build.sh'),
    ).find((x) => x.rule === 'cuda-devel-runtime')!;
    expect(f.message).toMatch(/nothing in it visibly compiles CUDA code, but line 3 may/);
    expect(f.fix).toMatch(/^if nothing compiles, use the matching runtime image/);
  });
  it('names no runtime image it does not know', () => {
    const f = findings(df('FROM tensorflow/tensorflow:devel-gpu', 'RUN echo hi')).find(
      (x) => x.rule === 'cuda-devel-runtime',
    )!;
    expect(f.fix).toMatch(/a runtime \(non-devel\) image of the same CUDA version/);
  });
});

describe('unpinned-install and unpinned-source', () => {
  it('lists what pip, npm and conda install without versions, and the loose lines of a requirements file', () => {
    expect(
      findings(df('FROM python:3.11-slim', 'RUN pip install jupyter tensorflow torch==2.5.1')).find(
        (x) => x.rule === 'unpinned-install',
      )!.message,
    ).toMatch(/^no version for jupyter, tensorflow:/);
    expect(hits(df('FROM node:20-slim', 'RUN npm install -g pm2'), 'unpinned-install')).toEqual([2]);
    expect(
      hits(df('FROM continuumio/miniconda3:24.7.1-0', 'RUN conda install -y numpy'), 'unpinned-install'),
    ).toEqual([2]);
    const ctx = snapshot({ 'requirements.txt': 9, 'package.json': 9 }, '.git\n', {
      'requirements.txt': 'numpy\npandas==2.2.2\n',
    });
    expect(
      findings(
        df('FROM python:3.11-slim', 'COPY requirements.txt .', 'RUN pip install -r requirements.txt'),
        { context: ctx },
      ).find((x) => x.rule === 'unpinned-install')!.message,
    ).toMatch(/^requirements\.txt: no version for numpy:/);
    expect(
      findings(df('FROM node:20-slim', 'COPY package.json .', 'RUN npm install'), { context: ctx }).find(
        (x) => x.rule === 'unpinned-install',
      )!.message,
    ).toMatch(/`npm install` without a lock file/);
  });
  it('reports a cloned branch, a VCS install without a commit, a piped installer and unversioned downloads of code', () => {
    const text = df(
      'FROM python:3.11-slim',
      'RUN git clone https://github.com/example/tools /opt/tools',
      'RUN pip install git+https://github.com/example/tools@main',
      'RUN curl -fsSL https://get.example.com | bash',
      'RUN wget https://bootstrap.pypa.io/get-pip.py && python get-pip.py',
      'ADD https://example.com/latest/setup.sh /tmp/',
    );
    expect(hits(text, 'unpinned-source')).toEqual([2, 3, 4, 5, 6]);
  });
  it('a checkout of a commit in a later RUN pins an earlier clone', () => {
    const text = df(
      'FROM python:3.11-slim',
      'RUN git clone https://github.com/example/tools /t',
      'RUN cd /t && git checkout 1a2b3c4d',
    );
    expect(hits(text, 'unpinned-source')).toEqual([]);
  });
});

describe('dev-tools-in-final', () => {
  it('reports notebooks, test runners and editors in a serving image', () => {
    const text = df(
      'FROM python:3.11-slim',
      'RUN pip install --no-cache-dir fastapi==0.115.0 jupyter==1.1.1 pytest-cov==5.0.0',
      'RUN apt-get update && apt-get install -y --no-install-recommends htop && rm -rf /var/lib/apt/lists/*',
      'CMD ["uvicorn", "app:app", "--host", "0.0.0.0"]',
    );
    expect(hits(text, 'dev-tools-in-final')).toEqual([2, 3]);
    expect(findings(text).find((x) => x.rule === 'dev-tools-in-final')!.message).toMatch(
      /jupyter, pytest-cov.*notebook server runs any code/,
    );
  });
});

describe('images', () => {
  it('reads CUDA flavours, runtime counterparts and Python-less bases, mirrors included', () => {
    expect(
      cudaImage('123.dkr.ecr.us-east-1.amazonaws.com/nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04'),
    ).toEqual({
      flavour: 'runtime',
      cudnn: true,
      ubuntu: '22.04',
      apt: true,
    });
    expect(cudaImage('nvidia/cuda:12.4.1-devel-ubi9')?.apt).toBe(false);
    expect(runtimeOf('127.0.0.1:5000/nvidia/cuda:12.4.1-devel-ubuntu22.04')).toBe(
      '127.0.0.1:5000/nvidia/cuda:12.4.1-runtime-ubuntu22.04',
    );
    expect(runtimeOf('pytorch/pytorch:2.5.1-cuda12.4-cudnn9-devel')).toBe(
      'pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime',
    );
    expect(runtimeOf('tensorflow/tensorflow:devel-gpu')).toBeUndefined();
    expect(pythonLessBase('nvidia/cuda:latest')).toBeUndefined();
    expect(pythonLessBase('debian:bookworm-slim')).toEqual({ family: 'debian', apt: true });
    expect(pythonLessBase('python:3.11-slim')).toBeUndefined();
  });
});

import { describe, expect, it } from 'vitest';
import {
  formatImageRef,
  ImageRefError,
  imageBaseName,
  imageName,
  inRegistry,
  isEcr,
  parseImageRef,
  tagMajor,
  withTag,
} from '../../../src/config/image-ref.js';

describe('image references', () => {
  it.each([
    ['nginx', { registry: 'docker.io', explicitRegistry: false, repository: 'nginx' }],
    ['nginx:1.27', { registry: 'docker.io', repository: 'nginx', tag: '1.27' }],
    // The first component is a registry only with a "." or ":" or "localhost": this is Docker Hub.
    [
      'user/repo:tag',
      { registry: 'docker.io', explicitRegistry: false, repository: 'user/repo', tag: 'tag' },
    ],
    ['localhost/app', { registry: 'localhost', explicitRegistry: true, repository: 'app' }],
    ['127.0.0.1:5000/stack/web:abc', { registry: '127.0.0.1:5000', repository: 'stack/web', tag: 'abc' }],
    [
      '123456789012.dkr.ecr.eu-west-1.amazonaws.com/stack/web:0a1b2c3',
      { registry: '123456789012.dkr.ecr.eu-west-1.amazonaws.com', repository: 'stack/web', tag: '0a1b2c3' },
    ],
  ])('%s', (text, expected) => {
    expect(parseImageRef(text)).toMatchObject(expected);
    expect(formatImageRef(parseImageRef(text))).toBe(text);
  });

  it('a digest is not mistaken for a tag, with or without a tag before it', () => {
    const digest = `sha256:${'a'.repeat(64)}`;
    expect(parseImageRef(`python@${digest}`)).toEqual({
      registry: 'docker.io',
      explicitRegistry: false,
      repository: 'python',
      digest,
    });
    const both = parseImageRef(`registry.example.com:443/ml/python:3.11-slim@${digest}`);
    expect(both).toMatchObject({
      registry: 'registry.example.com:443',
      repository: 'ml/python',
      tag: '3.11-slim',
      digest,
    });
    expect(formatImageRef(both)).toBe(`registry.example.com:443/ml/python:3.11-slim@${digest}`);
  });

  it('retags, moves to another registry and recognises ECR', () => {
    const ecr = parseImageRef('123456789012.dkr.ecr.us-east-1.amazonaws.com/s/web:one');
    expect(isEcr(ecr)).toBe(true);
    expect(formatImageRef(withTag(ecr, 'latest'))).toBe(
      '123456789012.dkr.ecr.us-east-1.amazonaws.com/s/web:latest',
    );
    expect(formatImageRef(inRegistry(ecr, '127.0.0.1:5000'))).toBe('127.0.0.1:5000/s/web:one');
    expect(isEcr(parseImageRef('127.0.0.1:5000/s/web:one'))).toBe(false);
    expect(imageName(parseImageRef('user/repo:tag'))).toBe('user/repo');
  });

  it.each([
    ['', 'empty'],
    ['Upper/Case', 'not a repository name'],
    ['repo:bad tag', 'not a valid tag'],
    ['repo@sha256:xyz', 'not a digest'],
  ])('refuses %j (%s)', (text, message) => {
    expect(() => parseImageRef(text)).toThrow(ImageRefError);
    expect(() => parseImageRef(text)).toThrow(message);
  });
});

describe('versions and names from image references', () => {
  it.each([
    ['postgres:16', 16],
    ['postgres:16.4-bookworm', 16],
    ['postgres:15-alpine', 15],
    // The registry's port is not the version: this image has none.
    ['127.0.0.1:5000/postgres', undefined],
    ['127.0.0.1:5000/postgres:17', 17],
    ['mariadb:lts', undefined],
    [`postgres@sha256:${'b'.repeat(64)}`, undefined],
  ])('tagMajor(%s) = %s', (text, major) => {
    expect(tagMajor(text)).toBe(major);
  });

  it('imageBaseName is the last path component of the repository', () => {
    expect(imageBaseName('ghcr.io/org/postgres:16')).toBe('postgres');
    expect(imageBaseName(`redis@sha256:${'c'.repeat(64)}`)).toBe('redis');
    expect(imageBaseName('localhost:5000/minio/minio:RELEASE.2024')).toBe('minio');
  });
});

// The ECS GPU AMI adapter against recorded SSM and EC2 answers: the requests it sends and
// the answers it reads are both checked against botocore's model (needs .venv: tools tier),
// and the AMI found gives the driver the GPU fit check uses.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as ec2Sdk from '@aws-sdk/client-ec2';
import * as ssmSdk from '@aws-sdk/client-ssm';
import { describe, expect, it } from 'vitest';
import { createGpuAmiApi } from '../../src/adapters/aws/gpu-ami-api.js';
import { driverOfAmi } from '../../src/core/deploy/gpu-fit.js';
import { loadServiceModel, validateShape } from '../helpers/aws-model.js';
import { requires } from '../helpers/requires.js';

const ssmModel = loadServiceModel('ssm');
const ec2Model = loadServiceModel('ec2');
const hasModels = requires(
  'botocore models',
  Boolean(ssmModel && ec2Model),
  'pip install -r requirements-dev.txt into .venv',
);

interface Recording {
  GetParameters: unknown;
  DescribeImages: unknown;
  expected: { id: string; os: string; version: string; driver: string };
}

const recording = (name: string) =>
  JSON.parse(readFileSync(path.resolve('fixtures/deploy/recorded', `${name}.json`), 'utf8')) as Recording;

/** A client that answers one recorded operation and checks what it was sent. */
function client(op: string, answer: unknown, sent: { op: string; input: unknown }[]) {
  return {
    send: async (command: { constructor: { name: string }; input: unknown }) => {
      const name = command.constructor.name.replace(/Command$/, '');
      sent.push({ op: name, input: command.input });
      if (name !== op) throw new Error(`unexpected AWS call ${name}`);
      return answer;
    },
  };
}

describe.runIf(hasModels)('the ECS GPU AMI, from recorded SSM and EC2 answers', () => {
  for (const name of ['gpu-ami-al2023', 'gpu-ami-al2-only']) {
    it(`${name}: requests and answers match botocore's model; the AMI and its driver`, async () => {
      const rec = recording(name);
      expect(validateShape(ssmModel!, 'GetParametersResult', rec.GetParameters)).toEqual([]);
      expect(validateShape(ec2Model!, 'DescribeImagesResult', rec.DescribeImages)).toEqual([]);
      const sent: { op: string; input: unknown }[] = [];
      const api = createGpuAmiApi(
        ssmSdk,
        client('GetParameters', rec.GetParameters, sent) as unknown as ssmSdk.SSMClient,
        ec2Sdk,
        client('DescribeImages', rec.DescribeImages, sent) as unknown as ec2Sdk.EC2Client,
      );
      const facts = await api.recommendedGpuAmi();
      expect(sent.map((s) => s.op)).toEqual(['GetParameters', 'DescribeImages']);
      expect(validateShape(ssmModel!, 'GetParametersRequest', sent[0]!.input)).toEqual([]);
      expect(validateShape(ec2Model!, 'DescribeImagesRequest', sent[1]!.input)).toEqual([]);
      expect(sent[1]!.input).toEqual({ ImageIds: [rec.expected.id] });
      expect(facts).toMatchObject({
        id: rec.expected.id,
        os: rec.expected.os,
        version: rec.expected.version,
      });
      expect(driverOfAmi(facts!).driver).toBe(rec.expected.driver);
    });
  }
});

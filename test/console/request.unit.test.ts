import { generateRequestBody } from '../../console/request';

const values = (fields: Record<string, string>) =>
  Object.fromEntries(Object.entries(fields).map(([name, value]) => [name, { value }]));

describe("generateRequestBody (the console form's values as the API's request)", () => {
  it('sends numbers as numbers and the prompt as typed', () => {
    expect(
      generateRequestBody(
        values({
          model: ' owner/name ',
          prompt: '  a lighthouse ',
          num_outputs: '2',
          seed: '0',
          output_format: 'webp',
          deadline_seconds: '600',
        }),
      ),
    ).toEqual({
      body: {
        model: 'owner/name',
        prompt: '  a lighthouse ',
        num_outputs: 2,
        seed: 0,
        output_format: 'webp',
        deadline_seconds: 600,
      },
      errors: [],
    });
  });

  it('leaves out the optional fields left empty, so the API applies its defaults', () => {
    expect(
      generateRequestBody(values({ model: 'o/n', prompt: 'p', num_outputs: '', seed: '', priority: '' })).body,
    ).toEqual({ model: 'o/n', prompt: 'p' });
  });

  it('sends out-of-range values as they are: the API judges them and names the field', () => {
    expect(generateRequestBody(values({ model: '', prompt: '', num_outputs: '11', seed: '1.5' }))).toEqual({
      body: { model: '', prompt: '', num_outputs: 11, seed: 1.5 },
      errors: [],
    });
  });

  it('refuses only what cannot be sent as a number', () => {
    expect(
      generateRequestBody({ prompt: { value: 'p' }, seed: { value: '', badInput: true }, num_outputs: { value: 'x' } })
        .errors,
    ).toEqual([
      { field: 'num_outputs', message: 'must be a number' },
      { field: 'seed', message: 'must be a number' },
    ]);
  });
});

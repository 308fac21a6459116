const Sequencer = require('@jest/test-sequencer').default;

/**
 * Runs the unit tier's files before the others, so that a fault in pure code shows within seconds of
 * the start; within each tier, jest's own order (failed first, then the slowest).
 */
class UnitFirstSequencer extends Sequencer {
  sort(tests) {
    const sorted = super.sort(tests);
    const isUnit = (test) => test.context.config.displayName?.name === 'unit';
    return [...sorted.filter(isUnit), ...sorted.filter((test) => !isUnit(test))];
  }
}

module.exports = UnitFirstSequencer;

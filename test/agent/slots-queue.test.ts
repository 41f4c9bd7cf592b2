// The concurrency slots' queue takes waiters from the front without shifting the array (a
// backlog of tens of thousands made each grant copy the whole queue). Order and shutdown must
// stay as they were across the points where the queue compacts itself.
import { Slots } from '../../agent/scheduler';
import { Shutdown } from '../../agent/shutdown';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('Slots with a long backlog', () => {
  it('grants thousands of waiters in arrival order, releases coming in bursts', async () => {
    const slots = new Slots(3);
    const sd = new Shutdown();
    const order: number[] = [];
    const n = 5000;
    const all = Array.from({ length: n }, (_, i) => slots.acquire(sd).then(() => order.push(i)));
    await tick();
    expect(order).toEqual([0, 1, 2]);
    let released = 0;
    // Bursts of different sizes, more waiters arriving in between.
    const late: Promise<number>[] = [];
    for (let burst = 1; released < n - 3; burst = (burst % 37) + 1) {
      for (let k = 0; k < burst && released < n - 3; k++, released++) slots.release();
      if (released % 1000 < burst) late.push(slots.acquire(sd).then(() => order.push(n + late.length)));
      await tick();
    }
    await Promise.all(all);
    expect(order.slice(0, n)).toEqual(Array.from({ length: n }, (_, i) => i));
    // The late ones queued behind the rest, still in their order.
    for (let k = 0; k < late.length; k++) slots.release();
    await Promise.all(late);
    expect(order.slice(n)).toEqual([...order.slice(n)].sort((a, b) => a - b));
    expect(order).toHaveLength(n + late.length);
  });

  it('rejects every waiter still queued at shutdown, past the point where the queue compacted', async () => {
    const slots = new Slots(1);
    const sd = new Shutdown();
    await slots.acquire(sd);
    const granted: number[] = [];
    const rejected: number[] = [];
    const all = Array.from({ length: 3000 }, (_, i) =>
      slots.acquire(sd).then(
        () => granted.push(i),
        () => rejected.push(i),
      ),
    );
    for (let k = 0; k < 1500; k++) {
      slots.release();
      await tick();
    }
    expect(granted).toEqual(Array.from({ length: 1500 }, (_, i) => i));
    sd.abort();
    await Promise.all(all);
    expect(rejected.sort((a, b) => a - b)).toEqual(Array.from({ length: 1500 }, (_, i) => 1500 + i));
    // A release after shutdown grants nobody: the rejected waiters left the queue.
    slots.release();
    await tick();
    expect(granted).toHaveLength(1500);
  });
});

const r = () => { const m = process.memoryUsage(); return `rss ${(m.rss/1048576).toFixed(1)} used ${(m.heapUsed/1048576).toFixed(1)} total ${(m.heapTotal/1048576).toFixed(1)}`; };
await import(process.argv[2]);
console.log('loaded', r());
for (let i = 0; i < 5; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 1000)); }
console.log('after 5 gc + 5s', r());
const v8 = await import('node:v8');
for (const s of v8.getHeapSpaceStatistics()) console.log(s.space_name, (s.space_size/1048576).toFixed(1), (s.space_used_size/1048576).toFixed(1));

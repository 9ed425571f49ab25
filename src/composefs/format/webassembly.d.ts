/**
 * The part of the WebAssembly JS API that format/core.ts uses. Node has it as a global, but neither
 * @types/node 20 nor the ES libraries declare it (lib.dom does, which this project does not load).
 */
declare namespace WebAssembly {
  class Module {
    constructor(bytes: ArrayBufferView | ArrayBuffer);
    static exports(module: Module): { name: string; kind: string }[];
  }
  class Instance {
    constructor(module: Module, imports?: Record<string, Record<string, unknown>>);
    readonly exports: Record<string, unknown>;
  }
  class Memory {
    readonly buffer: ArrayBuffer;
  }
}

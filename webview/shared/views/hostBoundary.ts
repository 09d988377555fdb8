/**
 * Compile-time proof (webview/tsconfig.json only; never bundled, nothing runs) that index.ts, the
 * implementation, satisfies index.host.ts, the declarations the host type-checks against: every
 * declared function accepts the host's arguments with the page's Document and returns what the
 * host expects; every declared constant has the declared type.
 */
import type * as Host from './index.host';
import type * as Views from './index';

type Tail<T extends readonly unknown[]> = T extends readonly [unknown, ...infer R] ? R : never;
type Fn = (...a: never[]) => unknown;
/** true when calling I the way the host calls H type-checks and I's result is an H result. */
type Conforms<I extends Fn, H extends Fn> =
  [Tail<Parameters<H>>] extends [Tail<Parameters<I>>]
    ? [ReturnType<I>] extends [ReturnType<H>] ? ([Document] extends [Parameters<H>[0]] ? true : false) : false
    : false;
type Same<I, H> = [I] extends [H] ? true : false;

export const hostBoundaryHolds: [
  Conforms<typeof Views.lineView, typeof Host.lineView>,
  Conforms<typeof Views.spectrumView, typeof Host.spectrumView>,
  Conforms<typeof Views.energyView, typeof Host.energyView>,
  Conforms<typeof Views.modelMapView, typeof Host.modelMapView>,
  Conforms<typeof Views.bondProfileView, typeof Host.bondProfileView>,
  Same<typeof Views.rampPosition, typeof Host.rampPosition>,
  Same<typeof Views.logTicks, typeof Host.logTicks>,
  Same<typeof Views.SVG_NS, typeof Host.SVG_NS>,
  Same<typeof Views.LINE_MARGIN, typeof Host.LINE_MARGIN>,
  Same<typeof Views.BOND_MARGIN, typeof Host.BOND_MARGIN>,
] = [true, true, true, true, true, true, true, true, true, true];

// WGS 84 geodesy in double precision: geodetic <-> Earth-centred (ECEF) and the local
// east/north/up frame of the viewer. Angles in degrees unless a name says radians; metres.

const A = 6378137.0;
const F = 1 / 298.257223563;
const E2 = F * (2 - F);

/** ECEF metres of a geodetic point (lon, lat in degrees, ellipsoidal height h in metres). */
export function toEcef(lon, lat, h) {
  const l = (lon * Math.PI) / 180;
  const p = (lat * Math.PI) / 180;
  const n = A / Math.sqrt(1 - E2 * Math.sin(p) ** 2);
  return [
    (n + h) * Math.cos(p) * Math.cos(l),
    (n + h) * Math.cos(p) * Math.sin(l),
    (n * (1 - E2) + h) * Math.sin(p),
  ];
}

/** Geodetic [lon, lat, h] of an ECEF point (Bowring's iteration, sub-millimetre). */
export function fromEcef(x, y, z) {
  const lon = Math.atan2(y, x);
  const p = Math.hypot(x, y);
  let lat = Math.atan2(z, p * (1 - E2));
  let h = 0;
  for (let i = 0; i < 6; i++) {
    const n = A / Math.sqrt(1 - E2 * Math.sin(lat) ** 2);
    h = p / Math.cos(lat) - n;
    lat = Math.atan2(z, p * (1 - (E2 * n) / (n + h)));
  }
  return [(lon * 180) / Math.PI, (lat * 180) / Math.PI, h];
}

/**
 * The east/north/up frame at `origin` ([lon, lat, h]): `toEnu(ecef)` and `fromEnu(enu)`, and
 * `rows`, the 3x3 rotation from ECEF to ENU (row-major).
 */
export function enuFrame(origin) {
  const [lon, lat, h] = origin;
  const l = (lon * Math.PI) / 180;
  const p = (lat * Math.PI) / 180;
  const [sl, cl, sp, cp] = [Math.sin(l), Math.cos(l), Math.sin(p), Math.cos(p)];
  const rows = [
    [-sl, cl, 0],
    [-sp * cl, -sp * sl, cp],
    [cp * cl, cp * sl, sp],
  ];
  const o = toEcef(lon, lat, h);
  return {
    origin,
    ecefOrigin: o,
    rows,
    toEnu([x, y, z]) {
      const d = [x - o[0], y - o[1], z - o[2]];
      return rows.map((r) => r[0] * d[0] + r[1] * d[1] + r[2] * d[2]);
    },
    fromEnu([e, n, u]) {
      return [0, 1, 2].map((i) => o[i] + rows[0][i] * e + rows[1][i] * n + rows[2][i] * u);
    },
  };
}

// One TilesRenderer per tileset: the token on every request, glTF content with its feature ids
// and property tables (EXT_mesh_features, EXT_structural_metadata; no Draco), placed in the
// viewer's local frame, and each loaded model tagged with the asset and lifecycle it belongs to.
import { TilesRenderer } from '3d-tiles-renderer';
import { GLTFExtensionsPlugin, ReorientationPlugin } from '3d-tiles-renderer/plugins';
import { toRadians } from './frame.js';

/** Screen-space error (px) the renderer refines to: sharp enough at street level, few tiles. */
export const ERROR_TARGET = 12;

/**
 * A TilesRenderer that reads 3D Tiles 1.1 as the viewer's tilesets use it (docs/viewer.md
 * lists what that is) without the library's warning about 1.1 on every tileset JSON.
 */
class ViewerTilesRenderer extends TilesRenderer {
  preprocessTileset(json, url, parent = null) {
    const asset = json && json.asset;
    const version = asset && asset.version;
    if (typeof version === 'string' && /^1\.[1-9]/.test(version)) {
      asset.version = '1.0';
      try {
        super.preprocessTileset(json, url, parent);
      } finally {
        asset.version = version;
      }
      return;
    }
    super.preprocessTileset(json, url, parent);
  }
}

/**
 * The asset, name and lifecycle a tile belongs to: the nearest `extras` with an `asset` up the
 * tile's parents (the scene tileset's child that references the asset's own tileset), else
 * what the tileset's entry says.
 * @param {any} tile @param {{assetId?: string, lifecycle?: string, name?: string}} entry
 * @returns {{assetId: string|null, lifecycle: string, name: string|null}}
 */
export function ownerOf(tile, entry) {
  for (let t = tile; t; t = t.parent) {
    const extras = t.extras;
    if (extras && typeof extras.asset === 'string') {
      return {
        assetId: extras.asset,
        lifecycle: extras.lifecycle || entry.lifecycle || 'existing',
        name: extras.name || null,
      };
    }
  }
  return { assetId: entry.assetId || null, lifecycle: entry.lifecycle || 'existing', name: entry.name || null };
}

/**
 * Make the renderer of one tileset entry.
 * @param {{url: string, assetId?: string, lifecycle?: string, name?: string}} entry
 * @param {{headers: Record<string, string>, onRootLoaded: (tiles: any) => (number[]|null),
 *   origin: () => (number[]|null)}} options `onRootLoaded` runs before the tileset is placed and
 *   returns the origin ([lon, lat, h] degrees/metres) to place it at
 * @returns {{tiles: any, plugin: any}}
 */
export function makeTiles(entry, { headers, onRootLoaded }) {
  const tiles = new ViewerTilesRenderer(entry.url);
  tiles.fetchOptions = { headers: { ...headers } };
  tiles.errorTarget = ERROR_TARGET;
  tiles.registerPlugin(new GLTFExtensionsPlugin({ metadata: true, rtc: true }));
  // The placement: the plugin reads lat/lon/height when the root tileset has loaded; the
  // listener below runs first (added before the plugin) and fills them in from the origin.
  // azimuth pi turns the plugin's frame (x west, z north) into ours (x east, z south), and
  // recenter keeps the translation, so every tileset with the same origin shares one frame.
  const plugin = new ReorientationPlugin({ lat: null, lon: null, height: 0, azimuth: Math.PI, recenter: true });
  tiles.addEventListener('load-root-tileset', () => {
    const origin = onRootLoaded(tiles);
    if (origin) {
      plugin.lat = toRadians(origin[1]);
      plugin.lon = toRadians(origin[0]);
      plugin.height = origin[2];
    }
  });
  tiles.registerPlugin(plugin);
  return { tiles, plugin };
}

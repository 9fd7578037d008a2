// Text labels for markers: a canvas drawn once per text and colour, shown as a sprite that
// always faces the camera.
import * as THREE from 'three';

const HEIGHT_PX = 56; // canvas height; the sprite's aspect follows the text's width
const FONT = `600 30px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif`;

/**
 * A canvas texture with `text` on a dark rounded box, a bar of `color` on its left.
 * @param {string} text @param {string} color CSS colour
 * @returns {{texture: THREE.CanvasTexture, aspect: number}}
 */
export function labelTexture(text, color) {
  const canvas = document.createElement('canvas');
  const context = canvas.getContext('2d');
  context.font = FONT;
  const textWidth = Math.ceil(context.measureText(text).width);
  const width = Math.min(1024, textWidth + 44);
  canvas.width = width;
  canvas.height = HEIGHT_PX;
  context.font = FONT; // resizing resets the context
  context.fillStyle = 'rgba(20, 24, 28, 0.82)';
  roundRect(context, 1, 1, width - 2, HEIGHT_PX - 2, 12);
  context.fill();
  context.fillStyle = color;
  roundRect(context, 8, 10, 8, HEIGHT_PX - 20, 4);
  context.fill();
  context.fillStyle = '#ffffff';
  context.textBaseline = 'middle';
  context.fillText(text, 26, HEIGHT_PX / 2 + 1, width - 34);
  const texture = new THREE.CanvasTexture(canvas);
  texture.colorSpace = THREE.SRGBColorSpace;
  texture.minFilter = THREE.LinearFilter;
  texture.generateMipmaps = false;
  return { texture, aspect: width / HEIGHT_PX };
}

function roundRect(context, x, y, w, h, r) {
  context.beginPath();
  context.moveTo(x + r, y);
  context.arcTo(x + w, y, x + w, y + h, r);
  context.arcTo(x + w, y + h, x, y + h, r);
  context.arcTo(x, y + h, x, y, r);
  context.arcTo(x, y, x + w, y, r);
  context.closePath();
}

/**
 * A label sprite whose text can change; its texture is redrawn only when text or colour do.
 * The sprite's origin is its bottom centre (it stands on the point it labels).
 */
export class Label {
  constructor() {
    this.material = new THREE.SpriteMaterial({ transparent: true, depthTest: false, depthWrite: false });
    this.sprite = new THREE.Sprite(this.material);
    this.sprite.center.set(0.5, 0);
    this.sprite.renderOrder = 10;
    this.aspect = 1;
    this.text = null;
    this.color = null;
  }

  /** @param {string} text @param {string} color */
  set(text, color) {
    if (text === this.text && color === this.color) return;
    this.text = text;
    this.color = color;
    const { texture, aspect } = labelTexture(text, color);
    if (this.material.map) this.material.map.dispose();
    this.material.map = texture;
    this.material.needsUpdate = true;
    this.aspect = aspect;
  }

  /** Height in metres at its place. @param {number} height */
  size(height) {
    this.sprite.scale.set(height * this.aspect, height, 1);
  }

  dispose() {
    if (this.material.map) this.material.map.dispose();
    this.material.dispose();
    this.sprite.removeFromParent();
  }
}

/**
 * Independent float64 references of the Gymnasium classic-control step functions
 * (gymnasium/envs/classic_control/*.py), written from the published equations in plain JS.
 * They return the next state before any time limit or auto-reset.
 */

export interface RefStep {
  state: number[];
  obs: number[];
  reward: number;
  terminated: boolean;
}

// ---------------------------------------------------------------- CartPole-v1
const CP = { gravity: 9.8, masscart: 1.0, masspole: 0.1, length: 0.5, forceMag: 10.0, tau: 0.02 };
export const CP_THETA_THRESHOLD = (12 * 2 * Math.PI) / 360;
export const CP_X_THRESHOLD = 2.4;

export function cartpoleStep(s: number[], action: number): RefStep {
  const [x, xDot, theta, thetaDot] = s as [number, number, number, number];
  const totalMass = CP.masspole + CP.masscart;
  const polemassLength = CP.masspole * CP.length;
  const force = action === 1 ? CP.forceMag : -CP.forceMag;
  const costheta = Math.cos(theta);
  const sintheta = Math.sin(theta);
  const temp = (force + polemassLength * thetaDot ** 2 * sintheta) / totalMass;
  const thetaacc = (CP.gravity * sintheta - costheta * temp) / (CP.length * (4.0 / 3.0 - (CP.masspole * costheta ** 2) / totalMass));
  const xacc = temp - (polemassLength * thetaacc * costheta) / totalMass;
  const next = [x + CP.tau * xDot, xDot + CP.tau * xacc, theta + CP.tau * thetaDot, thetaDot + CP.tau * thetaacc];
  const terminated =
    next[0]! < -CP_X_THRESHOLD || next[0]! > CP_X_THRESHOLD || next[2]! < -CP_THETA_THRESHOLD || next[2]! > CP_THETA_THRESHOLD;
  return { state: next, obs: next, reward: 1.0, terminated };
}

// ---------------------------------------------------------------- Acrobot-v1
export const AC_MAX_VEL_1 = 4 * Math.PI;
export const AC_MAX_VEL_2 = 9 * Math.PI;
const AC_DT = 0.2;

export function acrobotDsdt(s: number[], a: number): number[] {
  const m1 = 1.0, m2 = 1.0, l1 = 1.0, lc1 = 0.5, lc2 = 0.5, I1 = 1.0, I2 = 1.0, g = 9.8;
  const [theta1, theta2, dtheta1, dtheta2] = s as [number, number, number, number];
  const d1 = m1 * lc1 ** 2 + m2 * (l1 ** 2 + lc2 ** 2 + 2 * l1 * lc2 * Math.cos(theta2)) + I1 + I2;
  const d2 = m2 * (lc2 ** 2 + l1 * lc2 * Math.cos(theta2)) + I2;
  const phi2 = m2 * lc2 * g * Math.cos(theta1 + theta2 - Math.PI / 2.0);
  const phi1 =
    -m2 * l1 * lc2 * dtheta2 ** 2 * Math.sin(theta2) -
    2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * Math.sin(theta2) +
    (m1 * lc1 + m2 * l1) * g * Math.cos(theta1 - Math.PI / 2) +
    phi2;
  // "book" dynamics
  const ddtheta2 = (a + (d2 / d1) * phi1 - m2 * l1 * lc2 * dtheta1 ** 2 * Math.sin(theta2) - phi2) / (m2 * lc2 ** 2 + I2 - d2 ** 2 / d1);
  const ddtheta1 = -(d2 * ddtheta2 + phi1) / d1;
  return [dtheta1, dtheta2, ddtheta1, ddtheta2];
}

/** Gymnasium's wrap: repeated shifts by the period until inside [m, M]. */
export function wrap(x: number, m: number, M: number): number {
  const diff = M - m;
  while (x > M) x -= diff;
  while (x < m) x += diff;
  return x;
}
const bound = (x: number, m: number, M: number): number => Math.min(Math.max(x, m), M);

export function acrobotRk4(s: number[], torque: number): number[] {
  const dt = AC_DT;
  const dt2 = dt / 2;
  const f = (y: number[]) => acrobotDsdt(y, torque);
  const axpy = (y: number[], h: number, k: number[]) => y.map((v, i) => v + h * k[i]!);
  const k1 = f(s);
  const k2 = f(axpy(s, dt2, k1));
  const k3 = f(axpy(s, dt2, k2));
  const k4 = f(axpy(s, dt, k3));
  return s.map((v, i) => v + (dt / 6.0) * (k1[i]! + 2 * k2[i]! + 2 * k3[i]! + k4[i]!));
}

export function acrobotObs(s: number[]): number[] {
  return [Math.cos(s[0]!), Math.sin(s[0]!), Math.cos(s[1]!), Math.sin(s[1]!), s[2]!, s[3]!];
}

export function acrobotStep(s: number[], action: number): RefStep {
  const torque = [-1.0, 0.0, 1.0][action]!;
  const ns = acrobotRk4(s, torque);
  ns[0] = wrap(ns[0]!, -Math.PI, Math.PI);
  ns[1] = wrap(ns[1]!, -Math.PI, Math.PI);
  ns[2] = bound(ns[2]!, -AC_MAX_VEL_1, AC_MAX_VEL_1);
  ns[3] = bound(ns[3]!, -AC_MAX_VEL_2, AC_MAX_VEL_2);
  const terminated = -Math.cos(ns[0]!) - Math.cos(ns[1]! + ns[0]!) > 1.0;
  return { state: ns, obs: acrobotObs(ns), reward: terminated ? 0.0 : -1.0, terminated };
}

// ---------------------------------------------------------------- Pendulum-v1
export function angleNormalize(x: number): number {
  const p = 2 * Math.PI;
  const y = x + Math.PI;
  return y - p * Math.floor(y / p) - Math.PI; // Python's % takes the sign of the divisor
}

export function pendulumObs(s: number[]): number[] {
  return [Math.cos(s[0]!), Math.sin(s[0]!), s[1]!];
}

export function pendulumStep(s: number[], action: number): RefStep {
  const maxSpeed = 8, maxTorque = 2.0, dt = 0.05, g = 10.0, m = 1.0, l = 1.0;
  const [th, thdot] = s as [number, number];
  const u = Math.min(Math.max(action, -maxTorque), maxTorque);
  const costs = angleNormalize(th) ** 2 + 0.1 * thdot ** 2 + 0.001 * u ** 2;
  let newthdot = thdot + ((3 * g) / (2 * l) * Math.sin(th) + (3.0 / (m * l ** 2)) * u) * dt;
  newthdot = Math.min(Math.max(newthdot, -maxSpeed), maxSpeed);
  const newth = th + newthdot * dt;
  const next = [newth, newthdot];
  return { state: next, obs: pendulumObs(next), reward: -costs, terminated: false };
}

// ---------------------------------------------------------------- MountainCarContinuous-v0
export function mountainCarStep(s: number[], action: number): RefStep {
  const minPosition = -1.2, maxPosition = 0.6, maxSpeed = 0.07, goalPosition = 0.45, goalVelocity = 0, power = 0.0015;
  let [position, velocity] = s as [number, number];
  const force = Math.min(Math.max(action, -1.0), 1.0);
  velocity += force * power - 0.0025 * Math.cos(3 * position);
  if (velocity > maxSpeed) velocity = maxSpeed;
  if (velocity < -maxSpeed) velocity = -maxSpeed;
  position += velocity;
  if (position > maxPosition) position = maxPosition;
  if (position < minPosition) position = minPosition;
  if (position === minPosition && velocity < 0) velocity = 0;
  const terminated = position >= goalPosition && velocity >= goalVelocity;
  let reward = 0;
  if (terminated) reward = 100.0;
  reward -= action ** 2 * 0.1;
  const next = [position, velocity];
  return { state: next, obs: next, reward, terminated };
}

-- +goose Up
-- Reference data: security questions, exam areas, confirmation windows, majors.
-- The rows inserted here are the sample data of the domain brief; replace them
-- with the authority's real tables by a later migration or by SQL of your own.

CREATE TABLE security_questions (
    id   integer PRIMARY KEY,
    text text    NOT NULL
);

CREATE TABLE exam_areas (
    code           text PRIMARY KEY CHECK (code ~ '^[0-9]{4}$'),
    name           text NOT NULL,
    city           text NOT NULL,
    office_address text NOT NULL
);

-- One confirmation window (现场确认时间) per exam area and sitting.
-- sitting: 1 = April, 2 = October.
CREATE TABLE confirmation_windows (
    exam_area_code text        NOT NULL REFERENCES exam_areas (code),
    year           integer     NOT NULL CHECK (year BETWEEN 2000 AND 2099),
    sitting        integer     NOT NULL CHECK (sitting IN (1, 2)),
    starts_at      timestamptz NOT NULL,
    ends_at        timestamptz NOT NULL CHECK (ends_at > starts_at),
    PRIMARY KEY (exam_area_code, year, sitting)
);

CREATE TABLE majors (
    code        text PRIMARY KEY,
    name        text NOT NULL,
    level       text NOT NULL CHECK (level IN ('zhuanke', 'zhuanshengben')),
    host_school text NOT NULL,
    major_type  text NOT NULL DEFAULT 'social' CHECK (major_type IN ('social'))
);

INSERT INTO security_questions (id, text) VALUES
    (1, '您母亲的姓名？'),
    (2, '您父亲的姓名？'),
    (3, '您的出生地？'),
    (4, '您小学的校名？'),
    (5, '您配偶的姓名？'),
    (6, '您最喜欢的一本书？')
ON CONFLICT (id) DO NOTHING;

INSERT INTO exam_areas (code, name, city, office_address) VALUES
    ('0102', '江岸区', '武汉市', '武汉市江岸区教育局自考办（样例地址）'),
    ('0103', '江汉区', '武汉市', '武汉市江汉区教育局自考办（样例地址）'),
    ('0104', '硚口区', '武汉市', '武汉市硚口区教育局自考办（样例地址）'),
    ('0105', '汉阳区', '武汉市', '武汉市汉阳区教育局自考办（样例地址）'),
    ('0106', '武昌区', '武汉市', '武汉市武昌区教育局自考办（样例地址）'),
    ('0107', '青山区', '武汉市', '武汉市青山区教育局自考办（样例地址）'),
    ('0111', '洪山区', '武汉市', '武汉市洪山区教育局自考办（样例地址）'),
    ('0112', '东西湖区', '武汉市', '武汉市东西湖区教育局自考办（样例地址）'),
    ('0113', '汉南区', '武汉市', '武汉市汉南区教育局自考办（样例地址）'),
    ('0114', '蔡甸区', '武汉市', '武汉市蔡甸区教育局自考办（样例地址）'),
    ('0115', '江夏区', '武汉市', '武汉市江夏区教育局自考办（样例地址）'),
    ('0116', '黄陂区', '武汉市', '武汉市黄陂区教育局自考办（样例地址）'),
    ('0117', '新洲区', '武汉市', '武汉市新洲区教育局自考办（样例地址）'),
    ('0200', '黄石市', '黄石市', '黄石市教育考试院自考办（样例地址）'),
    ('0300', '十堰市', '十堰市', '十堰市教育考试院自考办（样例地址）'),
    ('0500', '宜昌市', '宜昌市', '宜昌市教育考试院自考办（样例地址）'),
    ('0600', '襄阳市', '襄阳市', '襄阳市教育考试院自考办（样例地址）'),
    ('0700', '鄂州市', '鄂州市', '鄂州市教育考试院自考办（样例地址）'),
    ('0800', '荆门市', '荆门市', '荆门市教育考试院自考办（样例地址）'),
    ('0900', '孝感市', '孝感市', '孝感市教育考试院自考办（样例地址）'),
    ('1000', '荆州市', '荆州市', '荆州市教育考试院自考办（样例地址）'),
    ('1100', '黄冈市', '黄冈市', '黄冈市教育考试院自考办（样例地址）'),
    ('1200', '咸宁市', '咸宁市', '咸宁市教育考试院自考办（样例地址）'),
    ('1300', '随州市', '随州市', '随州市教育考试院自考办（样例地址）'),
    ('2800', '恩施州', '恩施州', '恩施州教育考试院自考办（样例地址）'),
    ('9004', '仙桃市', '仙桃市', '仙桃市教育考试院自考办（样例地址）'),
    ('9005', '潜江市', '潜江市', '潜江市教育考试院自考办（样例地址）'),
    ('9006', '天门市', '天门市', '天门市教育考试院自考办（样例地址）'),
    ('9021', '神农架林区', '神农架林区', '神农架林区教育局自考办（样例地址）')
ON CONFLICT (code) DO NOTHING;

-- Codes without one in the brief are sample codes in the national catalogue's style.
INSERT INTO majors (code, name, level, host_school) VALUES
    ('120402',  '行政管理',   'zhuanshengben', '华中师范大学'),
    ('120201K', '工商管理',   'zhuanshengben', '武汉大学'),
    ('120103',  '工程管理',   'zhuanshengben', '武汉理工大学'),
    ('040107',  '小学教育',   'zhuanshengben', '湖北大学'),
    ('040106',  '学前教育',   'zhuanshengben', '华中师范大学'),
    ('030101K', '法学',       'zhuanshengben', '中南财经政法大学'),
    ('120203K', '会计学',     'zhuanshengben', '中南财经政法大学'),
    ('050101',  '汉语言文学', 'zhuanshengben', '华中师范大学'),
    ('590201',  '行政管理',   'zhuanke',       '湖北大学'),
    ('A020212', '企业财务管理', 'zhuanke',     '湖北经济学院')
ON CONFLICT (code) DO NOTHING;

-- +goose Down
-- Forward-only: no down migration.
